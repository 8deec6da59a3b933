"""scripts/make_tables.py and scripts/tables/ on a hand-made tree of results.json files; numbers computed by hand."""

import csv
import io
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import tables
from scripts.tables.aggregate import paper_columns
from tests.helpers.results_tree import checkpoint, result_block, training_log, write_log, write_results
from trainers.methods import registered_methods

REPO = Path(__file__).resolve().parents[1]
MAE = {"TRAINER": {"BLACKVIP": {"PT_BACKBONE": "vit-mae-base"}}}
DINO = {"TRAINER": {"BLACKVIP": {"PT_BACKBONE": "dino-resnet-50"}}}
LM1 = {"DATASET": {"LOCMNIST": {"R_SIZE": 1, "F_SIZE": 1}}}
BM_EASY = {"DATASET": {"COLOUR_BIASED_MNIST": {"TRAIN_RHO": 0.8, "TEST_RHO": 0.2}}, **MAE}
BV = "BLACKVIP/vit-mae-base_vit_b16"


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "output"

    def runs(path, trainer, dataset, accuracies, **kw):
        for seed, acc in enumerate(accuracies, start=1):
            write_results(root / path / f"seed{seed}", trainer, dataset, seed, acc, **kw)

    runs(
        f"svhn/{BV}/shot16_ep5000/hp",
        "BLACKVIP",
        "svhn",
        [40.0, 42.0, 44.0],
        config=MAE,
        train_images=640_000,
        learnable=9920,
    )
    runs(
        f"eurosat/{BV}/shot16_ep5000/hp",
        "BLACKVIP",
        "eurosat",
        [70.0, 76.0],
        config=MAE,
        train_images=64_000,
        learnable=9920,
    )
    runs(f"svhn/{BV}/shot4_ep5000/hp", "BLACKVIP", "svhn", [45.0], shots=4, config=MAE, learnable=9920)
    runs(
        "eurosat/BLACKVIP/dino-resnet-50_rn50/shot16_ep5000/hp",
        "BLACKVIP",
        "eurosat",
        [55.0],
        backbone="RN50",
        config=DINO,
        learnable=10464,
    )
    runs("svhn/ZeroshotCLIP/vit_b16", "ZeroshotCLIP", "svhn", [18.0], shots=-1)
    runs("eurosat/ZeroshotCLIP/vit_b16", "ZeroshotCLIP", "eurosat", [80.0], shots=-1)
    runs("svhn/VPOUR/vit_b16/shot16_ep5000/hp", "VPOUR", "svhn", [30.0], learnable=69840)
    runs("svhn/VPWB/vit_b16/shot16_ep1000/lr40", "VPWB", "svhn", [60.0, 62.0], learnable=69840)
    runs("svhn/VPWB/vit_b16/shot16_ep1000/lr10", "VPWB", "svhn", [50.0], learnable=69840)
    runs(
        "locmnist_r1_f1/BLACKVIP/vit-mae-base_vit_b16_noaug/shot16_ep5000/hp",
        "BLACKVIP",
        "locmnist",
        [69.0, 71.0],
        config={**LM1, **MAE},
    )
    runs(
        "locmnist_r1_f1/BLACKVIP/vit-mae-base_vit_b16_noaug/shot32_ep5000/hp",
        "BLACKVIP",
        "locmnist",
        [77.0],
        shots=32,
        config={**LM1, **MAE},
    )
    runs("locmnist_r1_f1/ZeroshotCLIP/vit_b16", "ZeroshotCLIP", "locmnist", [29.7], shots=-1, config=LM1)
    runs(
        "colour_biased_mnist_easy/BLACKVIP/vit-mae-base_vit_b16_noaug/shot16_ep5000/hp",
        "BLACKVIP",
        "colour_biased_mnist",
        [66.0],
        config=BM_EASY,
    )

    bar = root / "dtd/BAR/vit_b16/shot16_ep5000/lr5_min0.1"
    checkpoint(bar / "seed1", "program", 500)
    write_log(bar / "seed1", training_log(finished=False))
    write_log(bar / "seed2", training_log(finished=False))
    write_log(bar / "seed3", training_log(result_block(47.0)))
    write_results(bar / "seed4", "BAR", "dtd", 4, None)
    return root


def report_of(root, *argv):
    runs, unfinished = tables.collect(str(root))
    paper = tables.load_paper() if "--paper" in argv else None
    patterns = [argv[i + 1] for i, a in enumerate(argv) if a == "--variant"]
    return tables.build_report(runs, unfinished, paper, patterns)


def as_dict(table):
    return {row[0]: dict(zip(table.headers[1:], row[1:])) for row in table.rows}


def test_transfer_table_means_stds_avg_and_win(root):
    report = report_of(root)
    transfer4, transfer16, synthetic, cost = report.tables
    assert transfer16.title == "Transfer benchmarks, 16-shot"
    assert transfer16.headers == ["Method", "SVHN", "EuroSAT", "Avg", "Win"]
    assert transfer16.rows == [
        ["VP (white-box)", "61.0 ± 1.4 (2) *", "–", "61.0 (1/2)", "1 (1/2)"],
        ["ZS CLIP", "18.0 (1)", "80.0 (1)", "49.0", "–"],
        ["VP w/ SPSA-GC", "30.0 (1)", "–", "30.0 (1/2)", "1 (1/2)"],
        ["BlackVIP", "42.0 ± 2.0 (3)", "73.0 ± 4.2 (2)", "57.5", "1"],
        ["BlackVIP (RN50) [dino-resnet-50]", "–", "55.0 (1)", "55.0 (1/2)", "–"],  # no RN50 zero-shot run
    ]
    assert transfer4.title == "Transfer benchmarks, 4-shot"
    assert as_dict(transfer4)["BlackVIP"] == {"SVHN": "45.0 (1)", "EuroSAT": "–", "Avg": "45.0 (1/2)", "Win": "1 (1/2)"}
    assert as_dict(transfer4)["ZS CLIP"]["SVHN"] == "18.0 (1)"  # zero-shot counts for every shot count


def test_column_order_and_names_follow_the_paper_data():
    paper = tables.load_paper()
    columns = paper_columns()
    assert list(columns.transfer) == list(paper["transfer"]["accuracy"]["BLACKVIP"])
    assert set(columns.synthetic) == set(paper["synthetic"]["accuracy"]["BLACKVIP"])
    assert {m.name for m in registered_methods() if m.script_family} == set(paper["transfer"]["accuracy"])


def test_synthetic_table_in_the_paper_order(root):
    synthetic = report_of(root).tables[2]
    assert synthetic.headers == [
        "Method",
        "Biased MNIST ρ=0.8 (16-shot)",
        "Loc-MNIST 1:1 (16-shot)",
        "Loc-MNIST 1:1 (32-shot)",
    ]
    assert synthetic.rows == [
        ["ZS CLIP", "–", "29.70 (1)", "29.70 (1)"],
        ["BlackVIP", "66.00 (1)", "70.00 ± 1.41 (2)", "77.00 (1)"],
    ]


def test_cost_table_totals(root):
    cost = as_dict(report_of(root).tables[3])
    assert cost["BlackVIP"] == {
        "Runs": "10",
        "Learnable parameters": "0, 9,920",
        "Train image queries": "2,048,000",
        "Train calls": "20,480",
        "Train time (h)": "5.00",
    }
    assert cost["BlackVIP (RN50) [dino-resnet-50]"]["Learnable parameters"] == "10,464"


def test_variants_are_listed_and_chosen_not_averaged(root):
    report = report_of(root)
    title, lines = report.notes[0]
    assert "several hyper-parameter folders" in title
    assert lines[0].startswith("VP (white-box) / SVHN (16-shot): 2 hyper-parameter folders, not averaged")
    assert "    svhn/VPWB/vit_b16/shot16_ep1000/lr10: 50.00 (1)" in lines
    assert "    svhn/VPWB/vit_b16/shot16_ep1000/lr40: 61.00 ± 1.41 (2)  <- shown" in lines
    picked = report_of(root, "--variant", "lr10$")
    assert as_dict(picked.tables[1])["VP (white-box)"]["SVHN"] == "50.0 (1) *"
    assert "lr10: 50.00 (1)  <- shown" in "\n".join(picked.notes[0][1])


def test_runs_without_a_result_are_listed(root):
    title, lines = report_of(root).notes[-1]
    assert title == "Runs without a result (4), not in the tables"
    prefix = "dtd/BAR/vit_b16/shot16_ep5000/lr5_min0.1"
    assert lines == [
        f"{prefix}/seed1: unfinished: last checkpoint model.pth.tar-500, no results.json (re-run the script to resume)",
        f"{prefix}/seed2: log.txt without a result (failed or still running)",
        f"{prefix}/seed3: log.txt has a result but there is no results.json (killed while writing it, "
        "or another tool's run)",
        f"{prefix}/seed4: results.json without an accuracy",
    ]


def test_paper_numbers_and_differences(root):
    report = report_of(root, "--paper")
    transfer4, transfer16 = report.tables[:2]
    assert transfer16.headers[1:4] == ["SVHN", "SVHN paper", "Δ"]
    assert transfer16.rows[3][1:4] == ["42.0 ± 2.0 (3)", "44.3", "-2.3"]
    assert transfer16.rows[3][4:7] == ["73.0 ± 4.2 (2)", "73.1", "-0.1"]
    assert transfer16.rows[3][7:] == ["57.5", "64.0", "–", "1", "13", "–"]  # Avg/Win Δ need all 14
    assert transfer16.rows[1][1:7] == ["18.0 (1)", "18.1", "-0.1", "80.0 (1)", "47.9", "+32.1"]
    assert transfer16.rows[0][1:4] == ["61.0 ± 1.4 (2) *", "60.4", "+0.6"]
    assert transfer16.rows[4][4:7] == ["55.0 (1)", "–", "–"]  # RN50 / DINO: not a paper setting
    assert transfer4.rows[-1][1:4] == ["45.0 (1)", "–", "–"]  # the paper's table is 16-shot
    assert report.tables[2].rows[1][1:] == [
        "66.00 (1)",
        "66.21",
        "-0.21",
        "70.00 ± 1.41 (2)",
        "69.08",
        "+0.92",
        "77.00 (1)",
        "76.97",
        "+0.03",
    ]
    assert as_dict(report.tables[3])["BlackVIP"]["Paper parameters (ViT-B)"] == "9K"


def test_avg_and_win_against_the_paper_on_a_full_row(tmp_path):
    paper = tables.load_paper()["transfer"]["accuracy"]
    root = tmp_path / "output"
    for dataset, acc in paper["BLACKVIP"].items():
        write_results(root / dataset / "BLACKVIP" / "seed1", "BLACKVIP", dataset, 1, acc + 1.0, config=MAE)
        write_results(
            root / dataset / "ZeroshotCLIP" / "seed1",
            "ZeroshotCLIP",
            dataset,
            1,
            paper["ZeroshotCLIP"][dataset],
            shots=-1,
        )
    row = report_of(root, "--paper").tables[0].rows[-1]
    assert row[0] == "BlackVIP" and row[-6:] == ["65.0", "64.0", "+1.0", "14", "13", "+1"]


def run_cli(root, *argv):
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_tables.py"), str(root), *argv],
        capture_output=True,
        text=True,
        check=True,
    )


def test_latex_output_parses(root):
    out = run_cli(root, "--format", "latex", "--paper").stdout
    tabulars = re.findall(r"\\begin\{tabular\}\{(\w+)\}(.*?)\\end\{tabular\}", out, re.S)
    assert len(tabulars) == 4
    for spec, body in tabulars:
        rows = [line for line in body.splitlines() if line.rstrip().endswith(r"\\")]
        assert rows and all(row.count("&") == len(spec) - 1 for row in rows)
    assert r"42.0 $\pm$ 2.0 (3)" in out and r"Biased MNIST $\rho$=0.8" in out and r"$\Delta$" in out
    assert "% Runs without a result (4), not in the tables" in out


def test_csv_output_parses(root):
    proc = run_cli(root, "--format", "csv")
    blocks = [list(csv.reader(io.StringIO(block))) for block in proc.stdout.strip().split("\n\n")]
    assert [b[0][0].split(":")[0] for b in blocks] == [
        "Transfer benchmarks, 4-shot",
        "Transfer benchmarks, 16-shot",
        "Synthetic datasets",
        "Cost",
    ]
    for block in blocks:
        assert all(len(row) == len(block[1]) for row in block[2:])
    transfer = {row[0]: dict(zip(blocks[1][1], row)) for row in blocks[1][2:]}
    assert transfer["BlackVIP"]["EuroSAT"] == "73.0 ± 4.2 (2)"
    assert "Runs without a result (4)" in proc.stderr


def test_markdown_and_plot(root, tmp_path):
    png = tmp_path / "queries.png"
    out = run_cli(root, "--plot", str(png)).stdout
    assert "### Transfer benchmarks, 16-shot" in out and "mean ± sample std over seeds" in out
    assert "| BlackVIP " in out and "- dtd/BAR/vit_b16/shot16_ep5000/lr5_min0.1/seed4:" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


SVHN16 = f"svhn/{BV}/shot16_ep5000/hp"


def test_a_cell_whose_folder_holds_an_unfinished_run_reads_n_of_m_and_is_listed(root):
    checkpoint(root / SVHN16 / "seed4", "coordinator", 2500)
    write_log(root / SVHN16 / "seed4", training_log(finished=False))
    report = report_of(root)
    transfer4, transfer16 = report.tables[:2]
    assert as_dict(transfer16)["BlackVIP"]["SVHN"] == "42.0 ± 2.0 (3/4)"  # was "(3)": 3 of 4 passed off as all
    assert transfer16.caption.endswith("; n/m = n of the folder's m runs have a result")
    assert transfer4.caption == "mean ± sample std over seeds (n = number of seeds)"
    titles = [title for title, _ in report.notes]
    partial = report.notes[
        titles.index("Cells marked n/m average only the runs with a result (the rest are listed below)")
    ]
    assert partial[1] == [f"BlackVIP / SVHN (16-shot): the mean of 3 of the 4 runs in {SVHN16}"]
    title, lines = report.notes[-1]
    assert title == "Runs without a result (5), not in the tables"
    assert f"{SVHN16}/seed4: unfinished: last checkpoint model.pth.tar-2500, no results.json " in "\n".join(lines)


def test_an_unreadable_results_json_is_named_with_what_to_do_and_left_out(root):
    (root / SVHN16 / "seed3" / "results.json").write_text('{"trainer": "BLACKVIP", "accur')
    report = report_of(root)
    assert as_dict(report.tables[1])["BlackVIP"]["SVHN"] == "41.0 ± 1.4 (2/3)"
    title, lines = report.notes[-2]
    assert title == "Unreadable files (1), their runs not in the tables"
    assert lines[0].startswith(f"{root}/{SVHN16}/seed3/results.json: unreadable results.json, not valid JSON (")
    assert lines[0].endswith("; delete it and run the script again to rewrite it")
    assert report.notes[-1][0] == "Runs without a result (4), not in the tables"


def test_an_eval_only_result_is_neither_the_training_result_nor_a_seed(root):
    eval_only = '{"trainer": "BLACKVIP", "dataset": "SVHN", "accuracy": 5.0}'
    (root / SVHN16 / "seed1" / "results-eval.json").write_text(eval_only)
    unfinished = root / SVHN16 / "seed4"
    checkpoint(unfinished, "coordinator", 5000)
    (unfinished / "results-eval.json").write_text(eval_only)
    report = report_of(root)
    assert as_dict(report.tables[1])["BlackVIP"]["SVHN"] == "42.0 ± 2.0 (3/4)"
    assert (
        f"{SVHN16}/seed4: unfinished: last checkpoint model.pth.tar-5000, no results.json (re-run the script to "
        "resume); its results-eval.json is an --eval-only result, not the training result"
    ) in report.notes[-1][1]


def test_a_started_run_a_locked_run_and_a_validation_block_are_not_results(tmp_path):
    root = tmp_path / "output"
    (root / "a" / "seed1").mkdir(parents=True)
    (root / "a" / "seed1" / "run.json").write_text("{}")
    write_log(root / "a" / "seed2", training_log(finished=False))
    (root / "a" / "seed2" / ".lock").write_text(f"pid {os.getpid()} on {socket.gethostname()}, since 2026-01-01 10:00")
    validation = ["Evaluate on the *val* set", "=> result", "* accuracy: 50.0%"]
    write_log(root / "a" / "seed3", training_log(finished=False, before_end=validation))
    title, lines = report_of(root).notes[-1]
    assert title == "Runs without a result (3), not in the tables"
    assert lines == [
        "a/seed1: no results.json",
        f"a/seed2: log.txt without a result (failed or still running); pid {os.getpid()} (since 2026-01-01 10:00) "
        "may still be running it",
        "a/seed3: log.txt without a result (failed or still running)",
    ]


def test_strict_fails_after_printing_when_a_run_has_no_result(root, tmp_path, capsys):
    from scripts import make_tables

    assert make_tables.main([str(root), "--strict"]) == 1
    out = capsys.readouterr()
    assert "### Transfer benchmarks, 16-shot" in out.out and "### Runs without a result (4)" in out.out
    assert out.err.strip() == "--strict: 4 run(s) without a result (0 with an unreadable file), listed above"
    clean = tmp_path / "clean"
    write_results(clean / "svhn" / "seed1", "BLACKVIP", "svhn", 1, 40.0, config=MAE)
    assert make_tables.main([str(clean), "--strict"]) == 0


def test_a_run_moved_aside_by_start_over_is_not_read(tmp_path):
    root = tmp_path / "output"
    write_results(root / "svhn" / "seed1" / ".replaced-20260101-100000", "BLACKVIP", "svhn", 1, 40.0, config=MAE)
    assert tables.collect(str(root)) == ([], [])


def test_a_run_stopped_by_its_budget_is_in_the_table_and_named_in_a_note(tmp_path):
    root = tmp_path / "output"
    folder = root / "svhn" / "VPOUR" / "hp" / "seed1"
    write_results(folder, "VPOUR", "svhn", 1, 31.0, train_images=8_000, extra={"stopped_by": "budget", "steps": 50})
    report = report_of(root)
    assert any("31.0" in " ".join(row) for table in report.tables for row in table.rows)
    notes = dict(report.notes)
    title = "Runs that stopped early (1), in the tables with what they trained"
    assert notes[title] == ["svhn/VPOUR/hp/seed1: stopped by its query budget after 50 steps, 8,000 training images"]


def test_each_vp_prompt_design_and_size_is_a_row_of_its_own(tmp_path):
    root = tmp_path / "output"
    for design, size, accuracy in [("padding", 30, 60.0), ("fixed_patch", 30, 40.0), ("random_patch", 50, 45.0)]:
        config = {"TRAINER": {"VPWB": {"METHOD": design, "PROMPT_SIZE": size}}}
        for seed in (1, 2):
            folder = root / "eurosat" / "VPWB" / f"{design}{size}" / f"seed{seed}"
            write_results(folder, "VPWB", "eurosat", seed, accuracy + seed, config=config)
    rows = as_dict(report_of(root).tables[0])
    assert rows["VP (white-box)"]["EuroSAT"].startswith("61.5")  # the paper's pad 30 is the plain row
    assert rows["VP (white-box) [fixed_patch p=30]"]["EuroSAT"].startswith("41.5")
    assert rows["VP (white-box) [random_patch p=50]"]["EuroSAT"].startswith("46.5")
    assert list(rows)[:3] == [
        "VP (white-box)",
        "VP (white-box) [fixed_patch p=30]",
        "VP (white-box) [random_patch p=50]",
    ]


def test_a_classifier_target_is_labelled_by_its_name_not_as_zero_shot_clip(tmp_path):
    lenet = {"TARGET": {"NAME": "classifier", "CLASSIFIER": {"ARCH": "lenet5-mnist"}}}
    remote = {"TARGET": {"NAME": "remote", "REMOTE": {"MODEL": "lenet"}}}
    write_results(tmp_path / "svhn/ZS/seed1", "ZeroshotCLIP", "svhn", 1, 11.0, backbone="", config=lenet)
    write_results(tmp_path / "svhn/BAR/seed1", "BAR", "svhn", 1, 20.0, backbone="", config=lenet)
    write_results(tmp_path / "svhn/REMOTE/seed1", "ZeroshotCLIP", "svhn", 1, 11.0, backbone="", config=remote)
    transfer = report_of(tmp_path).tables[0]
    rows = as_dict(transfer)
    assert set(rows) == {"Zero-shot (LeNet-5)", "BAR (LeNet-5)", "Zero-shot (remote lenet)"}
    assert rows["BAR (LeNet-5)"]["Win"] == "1"  # compared with the zero-shot row of the same target
    assert not any("()" in label for label in rows)


def test_an_eval_only_run_of_a_trained_method_is_not_counted_as_a_seed(tmp_path):
    folder = tmp_path / "svhn/BLACKVIP/vit_b16/shot16"
    for seed, accuracy in ((1, 40.0), (2, 44.0)):
        write_results(folder / f"seed{seed}", "BLACKVIP", "svhn", seed, accuracy, learnable=9920, config=MAE)
    write_results(
        folder / "seed1_eval", "BLACKVIP", "svhn", 1, 90.0, learnable=9920, config=MAE, extra={"eval_only": True}
    )
    write_results(tmp_path / "svhn/ZS/seed1", "ZeroshotCLIP", "svhn", 1, 18.0)  # eval-only by nature: a seed
    report = report_of(tmp_path)
    rows = as_dict(report.tables[0])
    assert rows["BlackVIP"]["SVHN"] == "42.0 ± 2.8 (2)"
    assert rows["ZS CLIP"]["SVHN"] == "18.0 (1)"
    notes = dict(report.notes)
    [line] = notes["Evaluations (--eval-only) of trained models (1), not counted as seeds"]
    assert line.startswith(os.path.join("svhn/BLACKVIP/vit_b16/shot16", "seed1_eval") + ": BlackVIP")


def test_make_tables_states_its_spread_statistic(tmp_path):
    write_results(tmp_path / "svhn/ZS/seed1", "ZeroshotCLIP", "svhn", 1, 18.0)
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_tables.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "mean ± sample std over seeds" in out
