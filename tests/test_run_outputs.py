"""What a run leaves to look at: TensorBoard scalars per step and against queries, wandb's copy, the prompt grid."""

import json
import re
import sys
import types

import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.test_trainers import dataset_yaml, run, toy_root  # noqa: F401  (fixtures)
from trainers.methods.prompt_grid import GRID_IMAGES, PROMPT_GRID_FILE, grid_size

STEPS = 4  # 16 toy training images, batch 4, one epoch
PER_STEP_TAGS = {"train/loss", "train/acc", "train/grad_norm", "train/gain", "queries/images", "queries/usd"}


def scalars(out):
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def logged_steps(log):
    """(loss, acc, lr) of each step as the log prints them (PRINT_FREQ 1)."""
    pattern = r"loss ([\d.]+) \([\d.]+\) acc ([\d.]+) \([\d.]+\) grad_norm [\d.]+ \([\d.]+\) lr ([\d.e+-]+)"
    return [tuple(map(float, m)) for m in re.findall(pattern, log)]


@pytest.fixture(scope="module")
def blackvip_run(toy_root, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("runs") / "blackvip"
    yaml = out.parent / "toy.yaml"
    yaml.write_text("DATASET:\n  NAME: ToyCoOp\n")
    results = run("BLACKVIP", toy_root, out, yaml, "TARGET.USD_PER_1K", 2.0)
    return out, results


def test_tensorboard_has_every_per_step_metric_with_the_logged_values(blackvip_run):
    out, results = blackvip_run
    found = scalars(out)
    assert PER_STEP_TAGS <= set(found)
    for tag in PER_STEP_TAGS:
        assert [step for step, _ in found[tag]][:STEPS] == list(range(1, STEPS + 1)), tag
    logged = logged_steps((out / "log.txt").read_text())
    assert len(logged) == STEPS
    for (loss, acc, gain), (_, tb_loss), (_, tb_acc), (_, tb_gain) in zip(
        logged, found["train/loss"], found["train/acc"], found["train/gain"]
    ):
        assert tb_loss == pytest.approx(loss, abs=1e-4)
        assert tb_acc == pytest.approx(acc, abs=1e-4)
        assert tb_gain == pytest.approx(gain, rel=1e-4)


def test_cumulative_queries_and_cost_match_the_query_log(blackvip_run):
    out, results = blackvip_run
    found = scalars(out)
    per_step = results["queries_per_step"] * 4
    train_queries = [value for _, value in found["queries/images"][:STEPS]]
    assert train_queries == [per_step * k for k in range(1, STEPS + 1)]
    assert train_queries[-1] == results["queries"]["train"]["images"]
    assert f"Target queries: {int(train_queries[-1])} images" in (out / "log.txt").read_text()
    assert found["queries/usd"][STEPS - 1][1] == pytest.approx(train_queries[-1] / 1000 * 2.0)


def test_by_queries_scalars_use_the_query_count_as_their_step(blackvip_run):
    out, results = blackvip_run
    found = scalars(out)
    queries = [int(value) for _, value in found["queries/images"][:STEPS]]
    for tag in ("train/loss", "train/acc", "train/gain", "train/grad_norm", "queries/usd"):
        if tag.startswith("queries/"):
            assert "by_queries/" + tag not in found
            continue
        by_q = found["by_queries/" + tag]
        assert [step for step, _ in by_q] == queries
        assert [v for _, v in by_q] == [v for _, v in found[tag]]


def test_evaluation_accuracy_is_written_at_the_steps_done_and_the_queries_sent(blackvip_run):
    out, results = blackvip_run
    found = scalars(out)
    [(step, accuracy)] = found["test/accuracy"]
    assert step == STEPS and accuracy == pytest.approx(results["accuracy"])
    [(queries, _)] = found["by_queries/test/accuracy"]
    assert queries == results["queries"]["total"]["images"]


def test_each_prompting_run_saves_a_prompt_grid_of_the_expected_size(blackvip_run):
    out, _ = blackvip_run
    with Image.open(out / PROMPT_GRID_FILE) as image:
        assert image.mode == "RGB"
        assert image.size == grid_size(GRID_IMAGES, 224) == (3 * 226 + 2, GRID_IMAGES * 226 + 2)
    assert "Prompt grid (input | prompt | prompted input, 4 test images)" in (out / "log.txt").read_text()


def test_bar_grid_tiles_are_the_prompted_frame_size(toy_root, tmp_path, dataset_yaml):  # noqa: F811
    run("BAR", toy_root, tmp_path, dataset_yaml)
    with Image.open(tmp_path / PROMPT_GRID_FILE) as image:
        assert image.size == grid_size(GRID_IMAGES, 224)


def test_zero_shot_runs_write_no_grid(toy_root, tmp_path, dataset_yaml):  # noqa: F811
    run("ZeroshotCLIP", toy_root, tmp_path, dataset_yaml)
    assert not (tmp_path / PROMPT_GRID_FILE).exists()


class FakeWandb(types.ModuleType):
    """The parts of the wandb module train.py calls, recording what was logged."""

    def __init__(self):
        super().__init__("wandb")
        self.rows, self.metrics = [], {}

    def init(self, **kwargs):
        self.config = kwargs.get("config")

    def define_metric(self, name, step_metric=None):
        self.metrics[name] = step_metric

    def log(self, row, step=None):
        self.rows.append((step, row))

    def finish(self):
        pass


def test_use_wandb_logs_the_same_per_step_metrics(toy_root, tmp_path, dataset_yaml, monkeypatch):  # noqa: F811
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    results = run("VPOUR", toy_root, tmp_path, dataset_yaml, "TARGET.USD_PER_1K", 1.0, extra=["--use_wandb"])
    steps = [(step, row) for step, row in fake.rows if step is not None and "train/loss" in row]
    assert [step for step, _ in steps] == list(range(1, STEPS + 1))
    assert PER_STEP_TAGS <= set(steps[0][1])
    assert "by_queries/train/loss" in steps[0][1]
    assert fake.metrics["by_queries/*"] == "queries/images"
    tb = scalars(tmp_path)
    assert [row["train/loss"] for _, row in steps] == [v for _, v in tb["train/loss"]]
    final = fake.rows[-1][1]
    assert final["accuracy"] == results["accuracy"]
    json.dumps(fake.rows)  # plain numbers only
