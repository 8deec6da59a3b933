"""scripts/parse_test_res.py against hand-written logs in CoOp's format (expected output computed by hand)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import parse_test_res
from tests.helpers.results_tree import eval_only_log, result_block, training_log, write_log

REPO = Path(__file__).resolve().parents[1]


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


def parse(capsys, *argv):
    result = parse_test_res.main([str(a) for a in argv])
    return result, capsys.readouterr()


def test_per_file_lines_and_summary_match_coop(experiment, capsys):
    result, out = parse(capsys, experiment)
    assert out.out == (
        f"Parsing files in {experiment}\n"
        f"file: {experiment}/seed1/log.txt. accuracy: 87.50%. \n"
        f"file: {experiment}/seed2/log.txt. accuracy: 62.50%. \n"
        "===\n"
        f"Summary of directory: {experiment}\n"
        "* accuracy: 75.00% +- 12.50%\n"
        "===\n"
    )
    assert result == {"accuracy": 75.0}


def test_ci95_and_keyword(experiment, capsys):
    _, out = parse(capsys, experiment, "--ci95")
    assert "* accuracy: 75.00% +- 17.32%\n" in out.out  # 1.96 * 12.5 / sqrt(2)
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
        f"===\nSummary of directory: {a}\n* accuracy: 75.00% +- 5.00%\n===\n"
        f"Parsing files in {b}\n"
        f"file: {b}/seed1/log.txt. accuracy: 60.00%. \n"
        f"===\nSummary of directory: {b}\n* accuracy: 60.00% +- 0.00%\n===\n"
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
    assert proc.stdout.splitlines()[-2] == "* accuracy: 75.00% +- 17.32%"
