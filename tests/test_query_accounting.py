"""Exact query accounting: images and calls per split, max_batch splitting, cost, resume."""

import json

import pytest
import torch

from tests.helpers.targets import random_images, target_cfg
from trainers.targets import QueryCounter, Target, build_target


class RecordingTarget(Target):
    """A target whose 'model' averages pixels per channel and records the batch size of every call."""

    def __init__(self, **kwargs):
        super().__init__(["a", "b", "c"], **kwargs)
        self.input_size = 8
        self.batches: list[int] = []

    def describe(self) -> str:
        return "recording target"

    def _logits(self, images: torch.Tensor) -> torch.Tensor:
        self.batches.append(len(images))
        return images.mean(dim=(2, 3))

    def _move(self, device: torch.device) -> None:
        pass


@pytest.mark.parametrize(
    "n, max_batch, batches",
    [
        (130, 64, [64, 64, 2]),
        (130, 0, [130]),
        (128, 64, [64, 64]),
        (1, 64, [1]),
        (5, 1, [1, 1, 1, 1, 1]),
    ],
)
def test_calls_follow_max_batch(n, max_batch, batches):
    target = RecordingTarget(max_batch=max_batch)
    logits = target(torch.randn(n, 3, 8, 8))
    assert logits.shape == (n, 3) and logits.dtype == torch.float32
    assert target.batches == batches
    assert target.counter.images() == n and target.counter.calls() == len(batches)


def test_split_results_match_one_call():
    images = torch.randn(130, 3, 8, 8)
    whole = RecordingTarget()(images)
    split = RecordingTarget(max_batch=64)(images)
    torch.testing.assert_close(split, whole)


def test_counts_per_split_and_total():
    target = RecordingTarget(max_batch=64)
    target(torch.randn(130, 3, 8, 8), split="train")
    target(torch.randn(10, 3, 8, 8), split="val")
    target(torch.randn(100, 3, 8, 8), split="test")
    target.logits_with_input_grad(torch.randn(3, 3, 8, 8, requires_grad=True))
    c = target.counter
    assert (c.images("train"), c.calls("train")) == (133, 4)
    assert (c.images("val"), c.calls("val")) == (10, 1)
    assert (c.images("test"), c.calls("test")) == (100, 2)
    assert (c.images(), c.calls()) == (243, 7)
    assert c.images("unused") == 0 and c.calls("unused") == 0


def test_empty_batch_costs_nothing():
    target = RecordingTarget(max_batch=4)
    assert target(torch.randn(0, 3, 8, 8)).shape == (0, 3)
    assert target.counter.calls() == 0 and target.batches == []


def test_bad_inputs_are_refused_and_not_counted():
    target = RecordingTarget()
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        target(torch.randn(3, 8, 8))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        target(torch.randn(2, 1, 8, 8))
    assert target.counter.calls() == 0


def test_summary_line_without_rate():
    c = QueryCounter()
    c.add("train", 1280, calls=3)
    assert c.summary_line() == "Target queries: 1280 images in 3 calls"


def test_summary_line_and_dict_with_rate():
    c = QueryCounter(usd_per_1k=0.5)
    c.add("train", 1200, calls=2)
    c.add("test", 80)
    assert c.summary_line() == "Target queries: 1280 images in 3 calls (USD 0.64 at 0.50 per 1k images)"
    d = c.as_dict()
    assert d == {
        "train": {"images": 1200, "calls": 2},
        "test": {"images": 80, "calls": 1},
        "total": {"images": 1280, "calls": 3},
        "usd_per_1k": 0.5,
        "usd": pytest.approx(0.64),
    }
    assert json.loads(json.dumps(d))["total"] == {"images": 1280, "calls": 3}


def test_sub_cent_costs_stay_visible():
    c = QueryCounter(usd_per_1k=0.002)
    c.add("train", 100)
    assert c.summary_line() == "Target queries: 100 images in 1 calls (USD 0.0002 at 0.002 per 1k images)"


def test_state_dict_round_trip_keeps_counting():
    c = QueryCounter(usd_per_1k=1.0)
    c.add("train", 256, calls=2)
    c.add("val", 16)
    state = json.loads(json.dumps(c.state_dict()))
    resumed = QueryCounter(usd_per_1k=1.0)
    resumed.load_state_dict(state)
    assert resumed.as_dict() == c.as_dict()
    resumed.add("train", 128)
    assert (resumed.images("train"), resumed.calls("train")) == (384, 3)
    assert resumed.summary_line() == "Target queries: 400 images in 4 calls (USD 0.40 at 1.00 per 1k images)"


def test_counter_refuses_bad_counts():
    c = QueryCounter()
    with pytest.raises(ValueError):
        c.add("total", 1)
    with pytest.raises(ValueError):
        c.add("train", -1)
    with pytest.raises(ValueError):
        QueryCounter(usd_per_1k=-1.0)


def test_built_target_counts_and_prices_from_config():
    target = build_target(target_cfg({"TARGET.MAX_BATCH": 4, "TARGET.USD_PER_1K": 2.0}), ["a", "b"])
    target(random_images(10), split="train")
    target(random_images(3), split="test")
    assert target.max_batch == 4
    assert target.counter.as_dict()["train"] == {"images": 10, "calls": 3}
    assert target.counter.as_dict()["test"] == {"images": 3, "calls": 1}
    assert target.counter.summary_line() == "Target queries: 13 images in 4 calls (USD 0.03 at 2.00 per 1k images)"


def test_a_black_box_step_packs_images_across_parameter_vectors():
    """Batch 32 with 2K = 10 perturbations under MAX_BATCH 50: ceil(320 / 50) = 7 calls, not one per vector."""
    from trainers.methods import perturbed_losses
    from trainers.methods.losses import cross_entropy
    from trainers.prompters import PadPrompter

    target = RecordingTarget(max_batch=50)
    prompter = PadPrompter(image_size=16, pad=3)
    W = prompter.get_flat().expand(10, -1).clone()
    losses, correct = perturbed_losses(
        prompter,
        prompter.prepare(torch.zeros(32, 3, 16, 16)),
        W,
        target,
        torch.zeros(32, dtype=torch.long),
        cross_entropy,
    )
    assert losses.shape == (10,) and correct.shape == (10,)
    assert (target.counter.images("train"), target.counter.calls("train")) == (320, 7)
    assert target.batches == [50] * 6 + [20]
