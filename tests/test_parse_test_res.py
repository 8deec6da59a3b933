"""scripts/parse_test_res.py against hand-written logs in CoOp's format (expected output computed by hand)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import parse_test_res
from tests.helpers.results_tree import checkpoint, eval_only_log, result_block, training_log, write_log

REPO = Path(__file__).resolve().parents[1]
POP_STD = "(+- is the population std over {} run(s) (n in the denominator, numpy's default, as CoOp and Dassl))\n"


@pytest.fixture
def experiment(tmp_path):
    """seed1: 87.5 (an accuracy line before "Finish training" must not count); seed2: two result blocks,
    the last (62.5) wins; seed3: killed before the end signal; a stray file next to the seed folders."""
    exp = tmp_path / "exp"
    write_log(exp / "seed1", training_log(result_block(87.5), before_end=["* accuracy: 99.0%"]))
    write_log(exp / "seed2", training_log(result_block(75.0), result_block(62.5)))
    write_log(exp / "seed3", training_log(finished=False, before_end=["* accuracy: 99.0%"]))
    (exp / "notes.txt").write_text("not a run\n")
    return exp


def write_accuracy(folder, accuracy, name="results.json"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps({"accuracy": accuracy}))


def parse(capsys, *argv):
    result = parse_test_res.main([str(a) for a in argv])
    return result, capsys.readouterr()


def test_per_file_lines_and_summary_match_coop_and_the_unfinished_run_is_named(experiment, capsys):
    result, out = parse(capsys, experiment)
    assert out.out == (
        f"Parsing files in {experiment}\n"
        f"file: {experiment}/seed1/log.txt. accuracy: 87.50%. \n"
        f"file: {experiment}/seed2/log.txt. accuracy: 62.50%. \n"
        f'incomplete: {experiment}/seed3: log.txt has no result after "Finish training" '
        "(failed, killed or still running)\n"
        "Note: the summary covers 2 of 3 runs; 1 without a result (listed above)\n"
        "===\n"
        f"Summary of directory: {experiment}\n"
        "* accuracy: 75.00% +- 12.50%\n"
        "===\n" + POP_STD.format(2)
    )
    assert result == {"accuracy": 75.0}


def test_ci95_and_keyword(experiment, capsys):
    _, out = parse(capsys, experiment, "--ci95")
    assert "* accuracy: 75.00% +- 17.32%\n" in out.out  # 1.96 * 12.5 / sqrt(2)
    assert "(+- is the 95% confidence interval 1.96 x population std over 2 run(s)" in out.out
    _, out = parse(capsys, experiment, "--keyword", "error")
    assert f"file: {experiment}/seed2/log.txt. error: 37.50%. \n" in out.out
    assert "* error: 25.00% +- 12.50%\n" in out.out


def test_results_json_is_preferred_with_full_precision(experiment, capsys):
    (experiment / "seed1" / "results.json").write_text(json.dumps({"accuracy": 87.4321, "error": 12.5679}))
    _, out = parse(capsys, experiment)
    assert f"file: {experiment}/seed1/results.json. accuracy: 87.43%. \n" in out.out
    assert f"file: {experiment}/seed2/log.txt. accuracy: 62.50%. \n" in out.out
    assert "* accuracy: 74.97% +- 12.47%\n" in out.out  # mean 74.96605, population std 12.46605


def test_test_log_reads_eval_only_runs(tmp_path, capsys):
    exp = tmp_path / "zs"
    write_log(exp / "seed1", eval_only_log(result_block(18.1)))
    write_log(exp / "seed2", eval_only_log(result_block(18.3)))
    with pytest.raises(SystemExit, match="Nothing found in"):
        parse(capsys, exp)
    _, out = parse(capsys, exp, "--test-log")
    assert "* accuracy: 18.20% +- 0.10%\n" in out.out


def test_multi_exp_prints_each_experiment_then_the_average(tmp_path, capsys):
    root = tmp_path / "runs"
    write_log(root / "expA" / "seed1", training_log(result_block(80.0)))
    write_log(root / "expA" / "seed2", training_log(result_block(70.0)))
    write_log(root / "expB" / "seed1", training_log(result_block(60.0)))
    result, out = parse(capsys, root, "--multi-exp")
    a, b = root / "expA", root / "expB"
    assert out.out == (
        f"Parsing files in {a}\n"
        f"file: {a}/seed1/log.txt. accuracy: 80.00%. \n"
        f"file: {a}/seed2/log.txt. accuracy: 70.00%. \n"
        f"===\nSummary of directory: {a}\n* accuracy: 75.00% +- 5.00%\n===\n{POP_STD.format(2)}"
        f"Parsing files in {b}\n"
        f"file: {b}/seed1/log.txt. accuracy: 60.00%. \n"
        f"===\nSummary of directory: {b}\n* accuracy: 60.00% +- 0.00%\n===\n{POP_STD.format(1)}"
        "Average performance\n"
        "* accuracy: 67.50%\n"
    )
    assert result == {"accuracy": 67.5}


def test_folders_sort_by_name_and_empty_ones_warn(tmp_path, capsys):
    exp = tmp_path / "exp"
    for seed, acc in ((2, 20.0), (10, 10.0)):
        write_log(exp / f"seed{seed}", training_log(result_block(acc)))
    (exp / "seed3").mkdir()
    _, out = parse(capsys, exp)
    assert out.out.index("seed10/") < out.out.index("seed2/")  # CoOp's string order
    assert f"no results.json or log.txt in {exp}/seed3" in out.err


def test_runs_as_a_script(experiment):
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "parse_test_res.py"), str(experiment), "--ci95"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.splitlines()[-3:-1] == ["* accuracy: 75.00% +- 17.32%", "==="]


def test_an_unreadable_results_json_is_named_with_what_to_do(experiment, capsys):
    (experiment / "seed2" / "results.json").write_text('{"accuracy": 62.5, "err')  # truncated: the log still has it
    (experiment / "seed4").mkdir()
    (experiment / "seed4" / "results.json").write_text("{not json")  # and no log to fall back on
    _, out = parse(capsys, experiment)
    assert f"Warning: {experiment}/seed2/results.json: unreadable results.json, not valid JSON" in out.err
    assert f"rewrite it (the value below comes from {experiment}/seed2/log.txt)" in out.err
    assert f"file: {experiment}/seed2/log.txt. accuracy: 62.50%. \n" in out.out
    line = next(line for line in out.out.splitlines() if line.startswith("unreadable:"))
    assert line.startswith(f"unreadable: {experiment}/seed4/results.json: unreadable results.json, not valid JSON")
    assert line.endswith("delete it and run the script again to rewrite it")
    assert "Note: the summary covers 2 of 4 runs; 2 without a result (listed above)\n" in out.out
    assert "* accuracy: 75.00% +- 12.50%\n" in out.out


def test_checkpoints_run_json_and_locks_make_a_run_without_a_result(tmp_path, capsys):
    exp = tmp_path / "exp"
    write_log(exp / "seed1", training_log(result_block(80.0)))
    checkpoint(exp / "seed2", "coordinator", 300)
    (exp / "seed2" / ".lock").write_text(f"pid {os.getpid()} on {socket.gethostname()}, since 2026-01-01 10:00:00")
    (exp / "seed3").mkdir()
    (exp / "seed3" / "run.json").write_text("{}")
    _, out = parse(capsys, exp)
    assert (
        f"incomplete: {exp}/seed2: last checkpoint model.pth.tar-300, no log.txt and no results.json "
        f"(pid {os.getpid()} (since 2026-01-01 10:00:00) may still be running it; run the script again to resume it)\n"
    ) in out.out
    assert f"incomplete: {exp}/seed3: no log.txt and no results.json (failed, killed or still running)\n" in out.out
    assert "Note: the summary covers 1 of 3 runs" in out.out


def test_an_eval_only_result_is_neither_the_training_result_nor_a_seed(tmp_path, capsys):
    exp = tmp_path / "exp"
    write_accuracy(exp / "seed1", 80.0)
    write_accuracy(exp / "seed2", 70.0)
    write_accuracy(exp / "seed1", 10.0, "results-eval.json")
    write_accuracy(exp / "seed3", 10.0, "results-eval.json")
    write_log(exp / "seed3", training_log(finished=False))
    checkpoint(exp / "seed3", "coordinator", 100)
    _, out = parse(capsys, exp)
    assert "results-eval.json. " not in out.out and "accuracy: 10.00%" not in out.out
    assert (
        f"incomplete: {exp}/seed3: last checkpoint model.pth.tar-100, log.txt has no result after "
        '"Finish training" (its results-eval.json is an --eval-only result, not the training result; '
        "run the script again to resume it)\n"
    ) in out.out
    assert "Note: the summary covers 2 of 3 runs" in out.out and "* accuracy: 75.00% +- 5.00%\n" in out.out


def test_a_results_json_without_the_keyword_and_no_log_has_no_result(tmp_path, capsys):
    exp = tmp_path / "exp"
    write_accuracy(exp / "seed1", 80.0)
    write_accuracy(exp / "seed2", None)
    _, out = parse(capsys, exp)
    assert f"no result: {exp}/seed2: results.json holds no accuracy and log.txt is missing\n" in out.out
    assert "Note: the summary covers 1 of 2 runs" in out.out


def test_an_experiment_without_any_result_says_how_many_runs_it_holds(tmp_path, capsys):
    exp = tmp_path / "exp"
    write_log(exp / "seed1", training_log(finished=False))
    with pytest.raises(SystemExit, match=f"Nothing found in {exp}: none of its 1 runs has a result"):
        parse(capsys, exp)
    assert f"incomplete: {exp}/seed1: " in capsys.readouterr().out


def test_multi_exp_names_the_experiments_averaged_from_some_of_their_runs(tmp_path, capsys):
    root = tmp_path / "runs"
    write_log(root / "expA" / "seed1", training_log(result_block(80.0)))
    write_log(root / "expA" / "seed2", training_log(finished=False))
    write_log(root / "expB" / "seed1", training_log(result_block(60.0)))
    result, out = parse(capsys, root, "--multi-exp")
    assert out.out.endswith(
        f"Note: 1 of 2 experiments average only some of their runs: {root}/expA\n"
        "Average performance\n* accuracy: 70.00%\n"
    )
    with pytest.raises(SystemExit, match=rf"--strict: 1 run\(s\) without a result: {root}/expA/seed2"):
        parse(capsys, root, "--multi-exp", "--strict")


def test_strict_exits_non_zero_after_the_summary_when_a_run_has_no_result(experiment):
    script = [sys.executable, str(REPO / "scripts" / "parse_test_res.py"), str(experiment), "--strict"]
    proc = subprocess.run(script, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[-3] == "* accuracy: 75.00% +- 12.50%"
    assert proc.stderr.strip() == f"--strict: 1 run(s) without a result: {experiment}/seed3"
    write_log(experiment / "seed3", training_log(result_block(75.0)))
    proc = subprocess.run(script, capture_output=True, text=True)
    assert proc.returncode == 0 and "Note:" not in proc.stdout and not proc.stderr
