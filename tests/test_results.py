"""trainers/results.py: the one reader of results.json, on files written as train.py writes them."""

import json
from dataclasses import fields

import pytest

from tests.helpers.results_tree import write_results
from trainers import __version__
from trainers.results import QueryCount, ResultsError, RunResults


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
    assert str(path) in str(error.value)


def test_a_missing_file_raises_an_error_naming_it(tmp_path):
    with pytest.raises(ResultsError, match="unreadable results.json") as error:
        RunResults.read(str(tmp_path / "nowhere" / "results.json"))
    assert str(tmp_path / "nowhere" / "results.json") in str(error.value)
