"""trainers/results.py: the one reader of results.json, on files written as train.py writes them."""

import json
import os
import re
import socket
import subprocess
import sys
from dataclasses import fields

import pytest

from tests.helpers.results_tree import checkpoint, training_log, write_log, write_results
from trainers import __version__, run_folder
from trainers.results import (
    REWRITE_HINT,
    QueryCount,
    ResultsError,
    RunFiles,
    RunResults,
)


def test_reads_every_field_train_py_writes(tmp_path):
    path = write_results(
        tmp_path / "run",
        "BLACKVIP",
        "eurosat",
        2,
        73.25,
        shots=4,
        train_images=6400,
        learnable=9920,
        config={"OPTIM": {"MAX_EPOCH": 5}},
        extra={"steps": 50, "queries_per_step": 10},
    )
    written = json.loads(path.read_text())
    results = RunResults.read(str(path))
    assert set(written) <= {f.name for f in fields(RunResults)}
    assert (results.trainer, results.dataset, results.seed, results.shots) == ("BLACKVIP", "EuroSAT", 2, 4)
    assert (results.accuracy, results.error, results.backbone, results.eval_only) == (73.25, 26.75, "ViT-B/16", False)
    assert (results.learnable_parameters, results.train_time_s, results.wall_time_s) == (9920, 1800.0, 2.0)
    assert results.toolkit_version == __version__
    assert results.queries.splits == {"train": QueryCount(6400, 64), "test": QueryCount(10, 1)}
    assert results.queries.images("train") == 6400 and results.queries.calls("val") == 0
    assert (results.steps, results.queries_per_step) == (50, 10)
    assert results.config == {"OPTIM": {"MAX_EPOCH": 5}}


def test_totals_and_cost_are_read():
    queries = {"train": {"images": 3, "calls": 1}, "total": {"images": 3, "calls": 1}, "usd_per_1k": 1.2, "usd": 0.0036}
    results = RunResults.from_dict({"accuracy": 50, "queries": queries})
    assert results.queries.total == QueryCount(3, 1) and "total" not in results.queries.splits
    assert (results.queries.usd_per_1k, results.queries.usd) == (1.2, 0.0036)


def test_fields_a_run_did_not_record_read_as_none():
    results = RunResults.from_dict({"accuracy": 87.4321, "error": 12.5679})
    assert results.accuracy == 87.4321 and results.trainer is None and results.steps is None
    assert results.queries.images("train") == 0 and results.config == {}


@pytest.mark.parametrize(
    "text,message",
    [
        ("{not json", "unreadable results.json"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('{"accuracy": "high"}', '"accuracy" must be a number'),
        ('{"seed": 1.5}', '"seed" must be an integer'),
        ('{"queries": {"train": 5}}', '"queries.train" must be an object'),
        ('{"config": []}', '"config" must be an object'),
    ],
)
def test_a_malformed_file_raises_an_error_naming_it(tmp_path, text, message):
    path = tmp_path / "results.json"
    path.write_text(text)
    with pytest.raises(ResultsError, match=message) as error:
        RunResults.read(str(path))
    assert str(error.value).startswith(f"{path}: ") and str(error.value).endswith(f"; {REWRITE_HINT}")


def test_a_missing_file_raises_an_error_naming_it(tmp_path):
    path = tmp_path / "nowhere" / "results.json"
    with pytest.raises(ResultsError) as error:
        RunResults.read(str(path))
    assert str(error.value) == f"{path}: unreadable results.json (No such file or directory)"


def test_the_fingerprint_is_read_and_unknown_fields_are_ignored():
    results = RunResults.from_dict({"accuracy": 50.0, "fingerprint": "30ef5653d8d42f71", "from_a_newer_version": [1]})
    assert results.fingerprint == "30ef5653d8d42f71" and results.accuracy == 50.0
    assert RunResults.from_dict({"accuracy": 50.0}).fingerprint is None


def test_a_run_folder_is_one_where_a_run_started(tmp_path):
    assert not RunFiles.scan(str(tmp_path / "missing")).is_run
    (tmp_path / "tensorboard").mkdir()
    assert not RunFiles.scan(str(tmp_path)).is_run
    (tmp_path / "results-eval.json").write_text("{}")
    assert not RunFiles.scan(str(tmp_path)).is_run  # an evaluation alone is not a run
    (tmp_path / "run.json").write_text("{}")
    assert RunFiles.scan(str(tmp_path)).is_run


def test_a_run_folder_names_its_checkpoints_and_its_evaluation(tmp_path):
    write_log(tmp_path, training_log(finished=False))
    checkpoint(tmp_path, "coordinator", 300)
    checkpoint(tmp_path, "decoder", 200)
    (tmp_path / "results-eval.json").write_text("{}")
    run = RunFiles.scan(str(tmp_path))
    assert run.is_run and run.checkpoints == ("model.pth.tar-300", "model.pth.tar-200")
    assert run.hints() == ["its results-eval.json is an --eval-only result, not the training result"]


def test_a_lock_names_its_process_only_while_that_process_lives(tmp_path):
    with run_folder.RunFolder(str(tmp_path)).locked():
        pass  # the lock is free again, its file stays and still names this (living) process
    (hint,) = RunFiles.scan(str(tmp_path)).hints()
    assert re.fullmatch(rf"pid {os.getpid()} \(since [\d: -]+\) may still be running it", hint)
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    (tmp_path / ".lock").write_text(f"pid {gone.pid} on {socket.gethostname()}, since 2026-01-01 10:00:00")
    assert RunFiles.scan(str(tmp_path)).hints() == []
    (tmp_path / ".lock").write_text("pid 12 on gpu-node-7, since 2026-01-01 10:00:00")  # cannot be checked from here
    assert RunFiles.scan(str(tmp_path)).hints() == [
        "pid 12 on gpu-node-7 (since 2026-01-01 10:00:00) may still be running it"
    ]
