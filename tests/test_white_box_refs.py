"""The white-box references LP and FT through train.py on a tiny CLIP: counts, access, learning, exact resume."""

import json

import pytest
import torch

import train
from dassl.utils import load_checkpoint
from tests.helpers.toy_data import make_coop_dataset
from tests.plugins import coop_style  # noqa: F401  (registers the ToyCoOp dataset)
from trainers.methods import white_box
from trainers.methods.white_box import CLIPClassifier, WhiteBoxCLIPTrainer, zero_shot_head
from trainers.targets import CLIP_MEAN, CLIP_STD
from trainers.targets.clip import CLIPTarget, tiny_clip

CLASSES = ["annual crop", "forest", "river", "sea"]
FAST = [
    "DATALOADER.NUM_WORKERS",
    0,
    "DATALOADER.TRAIN_X.BATCH_SIZE",
    4,
    "DATALOADER.TEST.BATCH_SIZE",
    12,
    "MODEL.BACKBONE.NAME",
    "tiny-vit",
    "OPTIM.MAX_EPOCH",
    1,
    "OPTIM.WARMUP_EPOCH",
    0,
    "TRAIN.PRINT_FREQ",
    1,
]
HEAD = 64 * len(CLASSES) + len(CLASSES)  # tiny-vit's 64-d features to 4 classes, with biases


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


def run(method, root, out, dataset_yaml, *opts, seed=1):
    argv = [
        "--root",
        str(root),
        "--seed",
        str(seed),
        "--trainer",
        method,
        "--dataset-config-file",
        str(dataset_yaml),
        "--config-file",
        f"configs/trainers/{method}/vit_b16.yaml",
        "--output-dir",
        str(out),
        *[str(o) for o in FAST + list(opts)],
    ]
    return train.main(train.parse_args(argv))


def encoder_size() -> int:
    return sum(p.numel() for p in tiny_clip("tiny-vit").visual.parameters())


@pytest.mark.parametrize("method", ["LP", "FT"])
def test_white_box_reference_runs_through_train_py_and_says_it_is_white_box(method, toy_root, tmp_path, dataset_yaml):
    out = tmp_path / method
    results = run(method, toy_root, out, dataset_yaml)
    learnable = HEAD if method == "LP" else encoder_size() + HEAD
    log = (out / "log.txt").read_text()
    written = json.loads((out / "results.json").read_text())
    assert written["trainer"] == method and written["access"] == "white-box"
    assert written["learnable_parameters"] == results["learnable_parameters"] == learnable
    assert f"Learnable parameters: {learnable}\n" in log
    assert "Access: white-box" in log and "Finish training" in log and "* accuracy: " in log
    n_train, n_test = 4 * len(CLASSES), 3 * len(CLASSES)
    assert written["queries"]["train"]["images"] == n_train and written["queries"]["test"]["images"] == n_test
    assert f"Target queries: {n_train} images" in log


def test_lp_checkpoints_hold_only_the_head_and_ft_the_whole_encoder(toy_root, tmp_path, dataset_yaml):
    run("LP", toy_root, tmp_path / "lp", dataset_yaml)
    run("FT", toy_root, tmp_path / "ft", dataset_yaml)
    lp = load_checkpoint(str(tmp_path / "lp" / "head" / "model.pth.tar-1"))["state_dict"]
    ft = load_checkpoint(str(tmp_path / "ft" / "model" / "model.pth.tar-1"))["state_dict"]
    assert sorted(lp) == ["bias", "weight"]
    assert {"head.weight", "head.bias"} <= set(ft) and any(k.startswith("visual.") for k in ft)


def test_the_zero_shot_head_reproduces_zero_shot_clip():
    target = CLIPTarget(CLASSES, arch="tiny-vit", template="a photo of a {}.")
    clip = tiny_clip("tiny-vit")
    model = CLIPClassifier(clip.visual, zero_shot_head(clip, CLASSES, "a photo of a {}."), CLIP_MEAN, CLIP_STD)
    images = torch.randn(5, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(images), target(images), rtol=1e-4, atol=1e-4)


def test_the_classifier_converts_other_normalisations_to_clips():
    clip = tiny_clip("tiny-vit")
    head = zero_shot_head(clip, CLASSES, "a photo of a {}.")
    imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    pixels = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    as_clip = (pixels - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    as_imagenet = (pixels - torch.tensor(imagenet[0]).view(1, 3, 1, 1)) / torch.tensor(imagenet[1]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = CLIPClassifier(clip.visual, head, CLIP_MEAN, CLIP_STD)(as_clip)
        got = CLIPClassifier(clip.visual, head, *imagenet)(as_imagenet)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def accuracy_before_training(monkeypatch) -> list[float]:
    """Make white-box trainers evaluate once before their first step; returns the list the accuracies go to."""
    before: list[float] = []
    original = WhiteBoxCLIPTrainer.before_train

    def evaluate_first(self):
        original(self)
        before.append(self.test())

    monkeypatch.setattr(WhiteBoxCLIPTrainer, "before_train", evaluate_first)
    return before


@pytest.mark.parametrize("method", ["LP", "FT"])
def test_an_untrained_zero_shot_head_is_zero_shot_clip(method, toy_root, tmp_path, dataset_yaml, monkeypatch):
    zs = run("ZeroshotCLIP", toy_root, tmp_path / "zs", dataset_yaml)
    before = accuracy_before_training(monkeypatch)
    run(method, toy_root, tmp_path / method, dataset_yaml)
    assert before == [zs["accuracy"]]


def test_lp_can_start_from_a_random_head(toy_root, tmp_path, dataset_yaml):
    random = run("LP", toy_root, tmp_path / "random", dataset_yaml, "TRAINER.LP.HEAD_INIT", "random")
    log = (tmp_path / "random" / "log.txt").read_text()
    assert "with a random linear head" in log and random["learnable_parameters"] == HEAD


@pytest.mark.parametrize(
    "method,opts",
    [
        ("LP", ("TRAINER.LP.HEAD_INIT", "random", "OPTIM.LR", 0.05, "OPTIM.WEIGHT_DECAY", 0.0)),
        ("FT", ("OPTIM.LR", 1e-3)),
    ],
)
def test_white_box_reference_beats_its_initialisation(method, opts, toy_root, tmp_path, dataset_yaml, monkeypatch):
    before = accuracy_before_training(monkeypatch)
    common = ("OPTIM.MAX_EPOCH", 8, "INPUT.TRANSFORMS", "['normalize']", "OPTIM.LR_SCHEDULER", "single_step")
    after = run(method, toy_root, tmp_path / method, dataset_yaml, *common, *opts)["accuracy"]
    assert len(before) == 1 and before[0] <= 50.0
    assert after >= before[0] + 25.0


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("method", ["LP", "FT"])
def test_a_white_box_run_killed_mid_epoch_resumes_exactly(method, toy_root, tmp_path, dataset_yaml, monkeypatch):
    opts = (
        "OPTIM.MAX_EPOCH",
        2,
        "OPTIM.LR",
        1e-3,
        "TRAIN.CHECKPOINT_MINUTES",
        1e-9,
        "INPUT.TRANSFORMS",
        "['random_flip', 'normalize']",
    )
    full = run(method, toy_root, tmp_path / "full", dataset_yaml, *opts)
    original = WhiteBoxCLIPTrainer.forward_backward
    calls = []

    def killed_at_step_6(self, batch):
        calls.append(1)
        if len(calls) == 6:  # epoch 2, step 2: after the rolling checkpoint of step 5
            raise Interrupt
        return original(self, batch)

    monkeypatch.setattr(WhiteBoxCLIPTrainer, "forward_backward", killed_at_step_6)
    with pytest.raises(Interrupt):
        run(method, toy_root, tmp_path / "part", dataset_yaml, *opts)
    monkeypatch.undo()
    name = {"LP": "head", "FT": "model"}[method]
    assert (tmp_path / "part" / name / "checkpoint").read_text().strip() == "model.pth.tar-1+1"
    resumed = run(method, toy_root, tmp_path / "part", dataset_yaml, *opts)

    a = load_checkpoint(str(tmp_path / "full" / name / "model.pth.tar-2"))
    b = load_checkpoint(str(tmp_path / "part" / name / "model.pth.tar-2"))
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    for state_a, state_b in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(torch.as_tensor(state_a[k]), torch.as_tensor(state_b[k])) for k in state_a)
    assert resumed["accuracy"] == full["accuracy"]
    assert resumed["queries"]["train"] == full["queries"]["train"]


def test_white_box_references_refuse_black_box_only_settings(toy_root, tmp_path, dataset_yaml):
    with pytest.raises(ValueError, match="query budgets"):
        run("LP", toy_root, tmp_path / "o", dataset_yaml, "TARGET.BUDGET_IMAGES", 100)


def test_white_box_access_is_a_class_fact():
    from trainers.ft import FT
    from trainers.lp import LP

    assert LP.access == FT.access == white_box.ACCESS == "white-box"


def test_results_reader_keeps_the_access_field():
    from trainers.results import RunResults

    assert RunResults.from_dict({"trainer": "FT", "access": "white-box"}).access == "white-box"
    assert RunResults.from_dict({"trainer": "BAR"}).access is None
