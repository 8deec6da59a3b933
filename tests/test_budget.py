"""Query budgets: no request that would exceed the budget is ever sent; training stops before the step that would,
checkpoints, evaluates within the reserve and says so in results.json; a larger budget continues the run exactly."""

import re

import pytest
import torch

from dassl.config import get_cfg_default
from dassl.utils import load_checkpoint
from tests.test_trainers import dataset_yaml, run, toy_root  # noqa: F401  (fixtures)
from trainers.config import extend_cfg
from trainers.targets import Budget, BudgetExceeded, ClassifierTarget, QueryCounter

# The toy task: 16 training images in batches of 4 (4 steps per epoch), 12 test images; VPOUR with SP_AVG 2 sends
# 4 x 4 = 16 images per step.
STEP, TEST, EPOCH = 16, 12, 64


def budget_cfg(**target):
    cfg = extend_cfg(get_cfg_default())
    for key, value in target.items():
        cfg.TARGET[key] = value
    return cfg


def test_the_tighter_of_the_image_and_usd_budgets_applies():
    assert Budget.from_cfg(budget_cfg()).limited is False
    assert Budget.from_cfg(budget_cfg(BUDGET_IMAGES=500)).images == 500
    usd = Budget.from_cfg(budget_cfg(BUDGET_USD=0.3, USD_PER_1K=1.5))
    assert usd.images == 200 and "TARGET.BUDGET_USD 0.3" in usd.source
    assert Budget.from_cfg(budget_cfg(BUDGET_IMAGES=150, BUDGET_USD=0.3, USD_PER_1K=1.5)).images == 150
    with pytest.raises(ValueError, match="TARGET.BUDGET_USD 0.5 needs the price of the queries: set TARGET.USD_PER_1K"):
        Budget.from_cfg(budget_cfg(BUDGET_USD=0.5))


def test_a_reserve_is_kept_for_its_split_alone():
    counter, budget = QueryCounter(), Budget(100, reserved={"test": 30})
    assert budget.available(counter, "train") == 70 and budget.available(counter, "test") == 100
    counter.add("train", 60)
    assert budget.fits(counter, "train", 10) and not budget.fits(counter, "train", 11)
    assert budget.fits(counter, "test", 40)
    counter.add("test", 30)
    assert budget.available(counter, "train") == 10


def test_the_target_never_sends_a_request_beyond_the_budget():
    target = ClassifierTarget.example()
    target.budget = Budget(10)
    target(torch.zeros(6, 3, 28, 28), split="train")
    with pytest.raises(
        BudgetExceeded, match=r"A request of 5 images \(train\) would exceed .* 6 sent, 4 left.*Nothing"
    ):
        target(torch.zeros(5, 3, 28, 28), split="train")
    assert target.counter.images() == 6 and target.counter.calls() == 1


def test_a_run_stops_before_exceeding_its_budget_and_a_larger_one_continues_it_exactly(
    toy_root,  # noqa: F811
    tmp_path,
    dataset_yaml,  # noqa: F811
):
    opts = ("OPTIM.MAX_EPOCH", 2, "TRAINER.VPOUR.SP_AVG", 2)
    full = run("VPOUR", toy_root, tmp_path / "full", dataset_yaml, *opts)
    full_log = (tmp_path / "full" / "log.txt").read_text()
    planned = int(re.search(r"Planned target queries: 2 epochs x \(64 train\) \+ 12 test = (\d+) images", full_log)[1])
    assert planned == full["queries"]["total"]["images"] == 2 * EPOCH + TEST

    part = tmp_path / "part"
    stopped = run("VPOUR", toy_root, part, dataset_yaml, *opts, "TARGET.BUDGET_IMAGES", 100)
    q = stopped["queries"]
    assert stopped["stopped_by"] == "budget" and stopped["budget_images"] == 100
    assert q["train"]["images"] == 5 * STEP and q["test"]["images"] == TEST and q["total"]["images"] <= 100
    assert stopped["steps"] == 5 and stopped["accuracy"] is not None
    log = (part / "log.txt").read_text()
    assert "Query budget: TARGET.BUDGET_IMAGES 100; 0 already sent, 12 reserved for the final test" in log
    assert "Training stopped early: the query budget (TARGET.BUDGET_IMAGES 100) does not cover the next 16" in log
    assert (part / "prompter" / "checkpoint").read_text().strip() == "model.pth.tar-1+1"

    resumed = run("VPOUR", toy_root, part, dataset_yaml, *opts, "TARGET.BUDGET_IMAGES", 0)
    assert resumed["stopped_by"] is None and resumed["steps"] == 8
    assert resumed["queries"]["train"] == full["queries"]["train"]
    assert resumed["queries"]["test"]["images"] == 2 * TEST  # both evaluations were sent, so both are counted
    assert resumed["accuracy"] == full["accuracy"]
    a = load_checkpoint(str(tmp_path / "full" / "prompter" / "model.pth.tar-2"))["state_dict"]
    b = load_checkpoint(str(part / "prompter" / "model.pth.tar-2"))["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_budget_that_cannot_cover_a_step_and_the_test_sends_nothing(
    toy_root,  # noqa: F811
    tmp_path,
    dataset_yaml,  # noqa: F811
):
    with pytest.raises(BudgetExceeded, match="leaves 8 images for training after the final test's reserve"):
        run("VPOUR", toy_root, tmp_path / "o", dataset_yaml, "TRAINER.VPOUR.SP_AVG", 2, "TARGET.BUDGET_IMAGES", 20)
    assert not (tmp_path / "o" / "results.json").exists()
    assert "Finish training" not in (tmp_path / "o" / "log.txt").read_text()


def test_zero_shot_evaluation_beyond_the_budget_sends_nothing(
    toy_root,  # noqa: F811
    tmp_path,
    dataset_yaml,  # noqa: F811
):
    with pytest.raises(BudgetExceeded, match=r"A request of 12 images \(test\) would exceed"):
        run("ZeroshotCLIP", toy_root, tmp_path / "zs", dataset_yaml, "TARGET.BUDGET_IMAGES", 11, extra=["--eval-only"])
    assert not (tmp_path / "zs" / "results.json").exists()
