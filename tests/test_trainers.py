"""The method trainers through train.py on a tiny CLIP: results, parameter counts, query batching, resumption."""

import json
import re

import pytest
import torch

import train
from dassl.utils import load_checkpoint
from tests.helpers.toy_data import make_coop_dataset
from tests.plugins import coop_style  # noqa: F401  (registers the ToyCoOp dataset)
from trainers.encoders import FrozenEncoder
from trainers.methods import blackbox

CLASSES = ["annual crop", "forest", "river", "sea"]
CONFIGS = "configs/trainers"


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
    "TRAIN.PRINT_FREQ",
    1,
]
METHOD_OPTS = {
    "ZeroshotCLIP": ("ZeroshotCLIP/vit_b16.yaml", []),
    "VPWB": ("VPWB/vit_b16.yaml", ["OPTIM.WARMUP_EPOCH", 1]),
    "VPOUR": ("VPOUR/vit_b16.yaml", ["TRAINER.VPOUR.SP_AVG", 2]),
    "BAR": ("BAR/vit_b16.yaml", ["INPUT.SIZE", "[194,194]", "TRAINER.BAR.SP_AVG", 2]),
    "BLACKVIP": ("BLACKVIP/vit_b16.yaml", ["TRAINER.BLACKVIP.PT_BACKBONE", "tiny-vit", "TRAINER.BLACKVIP.SP_AVG", 2]),
}


def run(method, root, out, dataset_yaml, *opts, seed=1, extra=()):
    config, method_opts = METHOD_OPTS[method]
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
        f"{CONFIGS}/{config}",
        "--output-dir",
        str(out),
        *extra,
        *[str(o) for o in FAST + method_opts + list(opts)],
    ]
    return train.main(train.parse_args(argv))


def logged_int(log, pattern):
    return int(re.search(pattern, log).group(1))


@pytest.mark.parametrize(
    "method,learnable,queries_per_step",
    [
        ("ZeroshotCLIP", 0, 0),
        ("VPWB", 69840, 1),
        ("VPOUR", 69840, 4),
        ("BAR", 37620, 3),
        ("BLACKVIP", 9120 + 1568 - 32, 4),
    ],
)
def test_each_trainer_runs_through_train_py(method, learnable, queries_per_step, toy_root, tmp_path, dataset_yaml):
    out = tmp_path / method
    results = run(method, toy_root, out, dataset_yaml, extra=["--eval-only"] if method == "ZeroshotCLIP" else [])
    log = (out / "log.txt").read_text()
    written = json.loads((out / "results.json").read_text())
    assert written["trainer"] == method and written["accuracy"] == results["accuracy"]
    assert written["access"] == ("white-box" if method == "VPWB" else "black-box")
    assert 0.0 <= written["accuracy"] <= 100.0 and written["learnable_parameters"] == learnable
    assert logged_int(log, r"Learnable parameters: (\d+)\n") == learnable
    assert "* accuracy: " in log and "Target queries: " in log
    n_train, n_test = 4 * len(CLASSES), 3 * len(CLASSES)
    q = written["queries"]
    assert q["test"]["images"] == n_test
    assert q["train"]["images"] if method != "ZeroshotCLIP" else "train" not in q
    if method != "ZeroshotCLIP":
        assert "Finish training" in log
        assert q["train"]["images"] == queries_per_step * n_train
        images = logged_int(log, r"Target queries: (\d+) images")
        assert images == q["train"]["images"]  # printed at the end of training, before the test queries
    if method in ("VPOUR", "BAR", "BLACKVIP"):
        assert written["steps"] == n_train // 4 and written["queries_per_step"] == queries_per_step


class CallCounter:
    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *a, **k):
        self.calls += 1
        return self.fn(*a, **k)


def test_blackvip_encoder_once_per_step_and_one_target_call(toy_root, tmp_path, dataset_yaml, monkeypatch):
    forward = CallCounter(FrozenEncoder.forward)
    monkeypatch.setattr(FrozenEncoder, "forward", lambda self, x: forward(self, x))
    results = run("BLACKVIP", toy_root, tmp_path / "o", dataset_yaml, "TRAINER.BLACKVIP.SP_AVG", 3)
    steps = results["steps"]
    assert steps == 4
    q = results["queries"]["train"]
    assert q["calls"] == steps and q["images"] == steps * 2 * 3 * 4  # 2K*B images in a single call per step
    test_batches = results["queries"]["test"]["calls"]
    assert forward.calls == steps + test_batches + 1  # and once for the prompt grid's four test images


def test_blackvip_caches_encoder_features_when_the_transform_is_deterministic(
    toy_root, tmp_path, dataset_yaml, monkeypatch
):
    seen = []
    forward = FrozenEncoder.forward
    monkeypatch.setattr(FrozenEncoder, "forward", lambda self, x: seen.append(len(x)) or forward(self, x))
    results = run(
        "BLACKVIP", toy_root, tmp_path / "o", dataset_yaml, "INPUT.TRANSFORMS", "['normalize']", "OPTIM.MAX_EPOCH", 2
    )
    n_train, n_test = 4 * len(CLASSES), 3 * len(CLASSES)
    assert results["steps"] == 8
    assert seen == [n_train, n_test, 4]  # every training image encoded once, the test set, the prompt grid's four
    log = (tmp_path / "o" / "log.txt").read_text()
    assert f"Coordinator features cached for {n_train} training images" in log


def test_feature_cache_matches_per_batch_encoding(toy_root, dataset_yaml):
    from dassl.data import DataManager
    from trainers.encoders import build_encoder
    from trainers.methods.feature_cache import FeatureCache
    from trainers.prompters import Coordinator

    cfg = train.setup_cfg(
        train.parse_args(
            [
                "--dataset-config-file",
                str(dataset_yaml),
                "--config-file",
                f"{CONFIGS}/BLACKVIP/vit_b16_noaug.yaml",
                "--root",
                str(toy_root),
                *[str(o) for o in FAST],
            ]
        )
    )
    dm = DataManager(cfg)
    coordinator = Coordinator(build_encoder("tiny-vit"))
    cache = FeatureCache.build(dm.train_loader_x.dataset, coordinator.encode, torch.device("cpu"), batch_size=5)
    batch = next(iter(dm.train_loader_x))
    assert torch.allclose(cache[batch["index"]], coordinator.encode(batch["img"]), atol=1e-5)


def test_memory_bound_splits_calls(toy_root, tmp_path, dataset_yaml):
    results = run("VPOUR", toy_root, tmp_path / "o", dataset_yaml, "TRAINER.VPOUR.SP_AVG", 3, "TARGET.MAX_BATCH", 8)
    q = results["queries"]["train"]
    assert q["images"] == 4 * 6 * 4 and q["calls"] == 4 * 3  # 24 images per step in groups of 8


def test_one_sided_spsa_uses_k_plus_one_queries(toy_root, tmp_path, dataset_yaml):
    results = run(
        "VPOUR", toy_root, tmp_path / "o", dataset_yaml, "TRAINER.VPOUR.SP_AVG", 3, "TRAINER.VPOUR.ONE_SIDED", True
    )
    assert results["queries_per_step"] == 4 and results["queries"]["train"]["images"] == 4 * 4 * 4


class Interrupt(Exception):
    pass


@pytest.mark.parametrize(
    "method,transforms",
    [("BLACKVIP", "['random_flip', 'normalize']"), ("BLACKVIP", "['normalize']"), ("BAR", "['normalize']")],
)
def test_interrupted_black_box_run_resumes_exactly(method, transforms, toy_root, tmp_path, dataset_yaml, monkeypatch):
    opts = ("OPTIM.MAX_EPOCH", 3, "TRAIN.CHECKPOINT_FREQ", 1, "INPUT.TRANSFORMS", transforms)
    full = run(method, toy_root, tmp_path / "full", dataset_yaml, *opts)
    cls = blackbox.BlackBoxTrainer
    original = cls.after_epoch

    def die_after_first_epoch(self):
        original(self)
        if self.epoch == 0:
            raise Interrupt

    monkeypatch.setattr(cls, "after_epoch", die_after_first_epoch)
    with pytest.raises(Interrupt):
        run(method, toy_root, tmp_path / "part", dataset_yaml, *opts)
    monkeypatch.setattr(cls, "after_epoch", original)
    resumed = run(method, toy_root, tmp_path / "part", dataset_yaml, *opts)

    name = {"BLACKVIP": "coordinator", "BAR": "program"}[method]
    a = load_checkpoint(str(tmp_path / "full" / name / "model.pth.tar-3"))
    b = load_checkpoint(str(tmp_path / "part" / name / "model.pth.tar-3"))
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert a["optimizer"]["k"] == b["optimizer"]["k"] == 12
    assert resumed["accuracy"] == full["accuracy"]
    assert resumed["queries"]["train"] == full["queries"]["train"]
    assert not any(k.startswith("encoder.") for k in a["state_dict"])  # the frozen encoder is not checkpointed


def test_repeated_non_finite_losses_stop_with_a_clear_message(toy_root, tmp_path, dataset_yaml, monkeypatch):
    monkeypatch.setattr(blackbox, "MAX_NONFINITE_STEPS", 3)
    original = blackbox.perturbed_losses

    def nan_losses(*a, **k):
        losses, correct = original(*a, **k)
        return torch.full_like(losses, float("nan")), correct

    monkeypatch.setattr(blackbox, "perturbed_losses", nan_losses)
    with pytest.raises(FloatingPointError, match="non-finite losses for 3 steps in a row.*Lower the gain"):
        run("VPOUR", toy_root, tmp_path / "o", dataset_yaml, "OPTIM.MAX_EPOCH", 2)
    log = (tmp_path / "o" / "log.txt").read_text()
    assert "Non-finite loss from the target at step 1: update skipped (1 in a row)" in log
    assert not (tmp_path / "o" / "results.json").exists()


def test_zeroshot_matches_hand_computed_clip(toy_root, tmp_path, dataset_yaml):
    import open_clip

    from dassl.data import DataManager
    from trainers.targets.clip import tiny_clip

    results = run("ZeroshotCLIP", toy_root, tmp_path / "zs", dataset_yaml, extra=["--eval-only"])
    cfg = train.setup_cfg(
        train.parse_args(
            [
                "--dataset-config-file",
                str(dataset_yaml),
                "--config-file",
                f"{CONFIGS}/ZeroshotCLIP/vit_b16.yaml",
                "--root",
                str(toy_root),
                *[str(o) for o in FAST],
            ]
        )
    )
    dm = DataManager(cfg)
    model = tiny_clip("tiny-vit")
    prompts = [f"a photo of a {c}." for c in dm.dataset.classnames]  # the fallback template for unknown datasets
    correct = total = 0
    with torch.no_grad():
        text = torch.nn.functional.normalize(model.encode_text(open_clip.tokenize(prompts)), dim=-1)
        for batch in dm.test_loader:
            feats = torch.nn.functional.normalize(model.encode_image(batch["img"]), dim=-1)
            pred = (model.logit_scale.exp() * feats @ text.T).argmax(1)
            correct += (pred == batch["label"]).sum().item()
            total += len(pred)
    assert total == 12 and results["accuracy"] == pytest.approx(100.0 * correct / total)


PER_IMAGE = ("TRAINER.BLACKVIP.OPT_TYPE", "prompt-spsa-gc", "TRAINER.BLACKVIP.SP_AVG", 1)


@pytest.mark.parametrize("method,estimator", [("BLACKVIP", ()), ("BLACKVIP", PER_IMAGE), ("VPOUR", ()), ("BAR", ())])
def test_a_black_box_run_killed_mid_epoch_resumes_exactly_from_its_rolling_checkpoint(
    method, estimator, toy_root, tmp_path, dataset_yaml, monkeypatch
):
    opts = ("OPTIM.MAX_EPOCH", 2, "TRAIN.CHECKPOINT_MINUTES", 1e-9, "INPUT.TRANSFORMS", "['random_flip', 'normalize']")
    opts += estimator
    full = run(method, toy_root, tmp_path / "full", dataset_yaml, *opts)
    cls = blackbox.BlackBoxTrainer
    original = cls.forward_backward
    calls = []

    def killed_at_step_6(self, batch):
        calls.append(1)
        if len(calls) == 6:  # epoch 2, step 2: after the rolling checkpoint of step 5
            raise Interrupt
        return original(self, batch)

    monkeypatch.setattr(cls, "forward_backward", killed_at_step_6)
    with pytest.raises(Interrupt):
        run(method, toy_root, tmp_path / "part", dataset_yaml, *opts)
    monkeypatch.undo()
    name = {"BLACKVIP": "coordinator", "VPOUR": "prompter", "BAR": "program"}[method]
    assert (tmp_path / "part" / name / "checkpoint").read_text().strip() == "model.pth.tar-1+1"
    resumed = run(method, toy_root, tmp_path / "part", dataset_yaml, *opts)

    a = load_checkpoint(str(tmp_path / "full" / name / "model.pth.tar-2"))
    b = load_checkpoint(str(tmp_path / "part" / name / "model.pth.tar-2"))
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert a["optimizer"]["k"] == b["optimizer"]["k"] == 8
    if a["optimizer"].get("momentum") is not None:
        assert torch.equal(a["optimizer"]["momentum"], b["optimizer"]["momentum"])
    assert resumed["accuracy"] == full["accuracy"]
    assert resumed["queries"]["train"] == full["queries"]["train"]
    assert resumed["queries"] == full["queries"]


@pytest.mark.parametrize(
    "method,design", [("VPWB", "fixed_patch"), ("VPWB", "random_patch"), ("VPOUR", "random_patch")]
)
def test_vp_patch_designs_are_chosen_by_config(method, design, toy_root, tmp_path, dataset_yaml):
    out = tmp_path / method
    results = run(method, toy_root, out, dataset_yaml, f"TRAINER.{method}.METHOD", design)
    assert results["learnable_parameters"] == 2700  # 3 x 30^2 on 224
    assert "Learnable parameters: 2700\n" in (out / "log.txt").read_text()
    state = load_checkpoint(str(out / "prompter" / "model.pth.tar-1"))["state_dict"]
    assert state["patch"].shape == (1, 3, 30, 30)


def test_a_random_patch_run_killed_mid_epoch_resumes_its_locations_exactly(
    toy_root, tmp_path, dataset_yaml, monkeypatch
):
    opts = ("TRAINER.VPOUR.METHOD", "random_patch", "OPTIM.MAX_EPOCH", 2, "TRAIN.CHECKPOINT_MINUTES", 1e-9)
    full = run("VPOUR", toy_root, tmp_path / "full", dataset_yaml, *opts)
    original = blackbox.BlackBoxTrainer.forward_backward
    calls = []

    def killed_at_step_6(self, batch):
        calls.append(1)
        if len(calls) == 6:
            raise Interrupt
        return original(self, batch)

    monkeypatch.setattr(blackbox.BlackBoxTrainer, "forward_backward", killed_at_step_6)
    with pytest.raises(Interrupt):
        run("VPOUR", toy_root, tmp_path / "part", dataset_yaml, *opts)
    monkeypatch.undo()
    resumed = run("VPOUR", toy_root, tmp_path / "part", dataset_yaml, *opts)
    a = load_checkpoint(str(tmp_path / "full" / "prompter" / "model.pth.tar-2"))["state_dict"]
    b = load_checkpoint(str(tmp_path / "part" / "prompter" / "model.pth.tar-2"))["state_dict"]
    assert torch.equal(a["patch"], b["patch"]) and torch.equal(a["_extra_state"], b["_extra_state"])
    assert resumed["accuracy"] == full["accuracy"]


def test_random_patch_evaluation_is_the_same_at_any_test_batch_size(toy_root, tmp_path, dataset_yaml, monkeypatch):
    from trainers.methods.prompted import PromptedTargetTrainer

    out = tmp_path / "train"
    run("VPOUR", toy_root, out, dataset_yaml, "TRAINER.VPOUR.METHOD", "random_patch")
    parse, infer = PromptedTargetTrainer.parse_batch_test, PromptedTargetTrainer.model_inference

    def evaluate(batch_size):
        indices, logits = [], []

        def parse_spy(self, batch):
            indices.extend(batch["index"].tolist())
            return parse(self, batch)

        def infer_spy(self, images):
            output = infer(self, images)
            logits.extend(output)
            return output

        monkeypatch.setattr(PromptedTargetTrainer, "parse_batch_test", parse_spy)
        monkeypatch.setattr(PromptedTargetTrainer, "model_inference", infer_spy)
        extra = ["--eval-only", "--model-dir", str(out), "--load-epoch", "1"]
        results = run(
            "VPOUR",
            toy_root,
            tmp_path / f"eval{batch_size}",
            dataset_yaml,
            "TRAINER.VPOUR.METHOD",
            "random_patch",
            "DATALOADER.TEST.BATCH_SIZE",
            batch_size,
            extra=extra,
        )
        monkeypatch.undo()
        return results["accuracy"], dict(zip(indices, logits))

    (acc_a, by_image_a), (acc_b, by_image_b) = evaluate(12), evaluate(5)
    assert acc_a == acc_b and sorted(by_image_a) == sorted(by_image_b) == list(range(3 * len(CLASSES)))
    for i, row in by_image_a.items():
        assert torch.allclose(row, by_image_b[i], atol=1e-5), f"image {i} is prompted differently at batch size 5"


@pytest.mark.parametrize(
    "method,opts,message",
    [
        ("VPOUR", ("TRAINER.VPOUR.PROMPT_SIZE", 112), r"TRAINER\.VPOUR\.PROMPT_SIZE 112 .* padding .* at most 111"),
        (
            "VPWB",
            ("TRAINER.VPWB.METHOD", "fixed_patch", "TRAINER.VPWB.PROMPT_SIZE", 225),
            r"TRAINER\.VPWB\.PROMPT_SIZE 225 .* patch .* at most 224",
        ),
        (
            "BLACKVIP",
            ("TRAINER.BLACKVIP.METHOD", "fixed_patch"),
            r"TRAINER\.BLACKVIP\.METHOD must be one of \('coordinator', 'coordinator_init'\), got 'fixed_patch'",
        ),
        ("BAR", ("TRAINER.BAR.METHOD", "padding"), r"TRAINER\.BAR\.METHOD must be one of \('reprogramming',\)"),
    ],
)
def test_a_prompt_design_that_cannot_be_built_is_refused_before_data_loads(
    method, opts, message, tmp_path, dataset_yaml
):
    with pytest.raises(ValueError, match=message):
        run(method, tmp_path / "no_data_here", tmp_path / "out", dataset_yaml, *opts)
