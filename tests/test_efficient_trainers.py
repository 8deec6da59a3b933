"""The query-saving options on the real training path: per-image prompt-space SPSA in BLACKVIP, the parameter-space
options through the config, and stopping on a validation plateau."""

import json
import re

import pytest
import torch

from dassl.utils import load_checkpoint
from tests.helpers.toy_data import make_coop_dataset
from tests.test_trainers import CLASSES, PER_IMAGE, run

N_TRAIN, N_VAL = 4 * len(CLASSES), 1 * len(CLASSES)


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_coop_dataset(str(root), "toy_coop", "split_zhou_ToyCoOp.json", CLASSES, n_train=4, n_val=1, n_test=3)
    return root


@pytest.fixture
def dataset_yaml(tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text("DATASET:\n  NAME: ToyCoOp\n")
    return path


def test_per_image_blackvip_trains_with_two_queries_per_image(toy_root, tmp_path, dataset_yaml):
    out = tmp_path / "o"
    opts = ("TRAINER.BLACKVIP.ONE_SIDED", True, "OPTIM.MAX_EPOCH", 2, "TRAIN.CHECKPOINT_FREQ", 1)
    results = run("BLACKVIP", toy_root, out, dataset_yaml, *PER_IMAGE, *opts)
    written = json.loads((out / "results.json").read_text())
    assert written["queries_per_step"] == 2 and written["steps"] == 2 * N_TRAIN // 4
    assert results["queries"]["train"]["images"] == 2 * 2 * N_TRAIN
    assert "Target queries per step: 2 x batch" in (out / "log.txt").read_text()
    first = load_checkpoint(str(out / "coordinator" / "model.pth.tar-1"))["state_dict"]
    second = load_checkpoint(str(out / "coordinator" / "model.pth.tar-2"))["state_dict"]
    changed = [k for k in first if k.startswith("decoder.") and not torch.equal(first[k], second[k])]
    assert "decoder.trigger" in changed and any(k.endswith(".weight") for k in changed)


def test_per_image_needs_a_prompter_with_a_prompt_space(toy_root, tmp_path, dataset_yaml):
    with pytest.raises(Exception, match="estimates each image's prompt gradient.*padding"):
        run("VPOUR", toy_root, tmp_path / "o", dataset_yaml, "TRAINER.VPOUR.OPT_TYPE", "prompt-spsa-gc")


@pytest.mark.parametrize(
    "opts,queries_per_step",
    [
        (("TRAINER.BLACKVIP.DIRECTIONS", "orthogonal"), 4),
        (("TRAINER.BLACKVIP.DIRECTIONS", "guided", "TRAINER.BLACKVIP.ONE_SIDED", True), 3),
        (("TRAINER.BLACKVIP.SUBSPACE_DIM", 64, "TRAINER.BLACKVIP.CLIP_NORM", -1), 4),
    ],
)
def test_parameter_space_options_run_through_train_py(opts, queries_per_step, toy_root, tmp_path, dataset_yaml):
    out = tmp_path / "o"
    results = run("BLACKVIP", toy_root, out, dataset_yaml, *opts)
    assert results["queries"]["train"]["images"] == queries_per_step * N_TRAIN
    assert json.loads((out / "results.json").read_text())["queries_per_step"] == queries_per_step


def test_plateau_stops_counts_validation_and_deploys_the_best(toy_root, tmp_path, dataset_yaml):
    # MIN_DELTA 1000: no evaluation can improve on the first, so training stops at the second (step 2)
    opts = (
        "OPTIM.MAX_EPOCH",
        3,
        "TRAIN.PLATEAU_EVERY",
        1,
        "TRAIN.PLATEAU_PATIENCE",
        1,
        "TRAIN.PLATEAU_MIN_DELTA",
        1000,
    )
    out = tmp_path / "o"
    results = run("BLACKVIP", toy_root, out, dataset_yaml, *opts)
    written = json.loads((out / "results.json").read_text())
    log = (out / "log.txt").read_text()
    assert written["stopped_by"] == "plateau" and written["steps"] == 2
    assert results["queries"]["val"]["images"] == 2 * N_VAL
    assert results["queries"]["train"]["images"] == 2 * 4 * 4  # 2 steps x 4 points x batch 4
    assert "Validation at step 1:" in log and "Validation at step 2:" in log
    assert "Deploy the prompter with the best validation accuracy" in log and "at step 1;" in log
    # the same command again does not train further
    again = run("BLACKVIP", toy_root, out, dataset_yaml, *opts)
    assert again["queries"]["train"] == results["queries"]["train"] and again["accuracy"] == results["accuracy"]
    assert "stopped on a validation plateau" in (out / "log.txt").read_text()


def test_plateau_settings_are_checked(toy_root, tmp_path, dataset_yaml):
    with pytest.raises(Exception, match="TRAIN.PLATEAU_EVERY must be >= 0"):
        run("BLACKVIP", toy_root, tmp_path / "o", dataset_yaml, "TRAIN.PLATEAU_EVERY", -1)


def test_plateau_tracking_to_the_end_of_the_schedule_deploys_and_saves_the_best(toy_root, tmp_path, dataset_yaml):
    # MIN_DELTA 1000: the first evaluation (step 2) stays the best; PATIENCE 100: training never stops on it
    opts = (
        "OPTIM.MAX_EPOCH",
        2,
        "TRAIN.PLATEAU_EVERY",
        2,
        "TRAIN.PLATEAU_PATIENCE",
        100,
        "TRAIN.PLATEAU_MIN_DELTA",
        1000,
    )
    out = tmp_path / "o"
    results = run("BLACKVIP", toy_root, out, dataset_yaml, *opts)
    written = json.loads((out / "results.json").read_text())
    assert written["stopped_by"] is None and written["steps"] == 8
    assert results["queries"]["val"]["images"] == 4 * N_VAL  # steps 2, 4, 6 and 8
    log = (out / "log.txt").read_text()
    assert re.search(r"Deploy the prompter with the best validation accuracy \([0-9.]+% at step 2;", log)
    saved = load_checkpoint(str(out / "coordinator" / "model.pth.tar-2"))
    best_state = saved["trainer_state"]["plateau"]["best_state"]
    for key, value in best_state.items():  # the last checkpoint holds the deployed (best) prompter
        assert torch.equal(saved["state_dict"][key].cpu(), value), key
