"""The Dassl-compatible engine: CLI/config merging, registries, few-shot caches, checkpoints, resume, logs."""

import json
import os
import os.path as osp
import pickle

import pytest
import torch

import train
from dassl.config import get_cfg_default
from dassl.data.datasets import DatasetBase, Datum
from dassl.utils import Registry, check_availability, load_checkpoint
from tests.helpers.toy_data import make_coop_dataset
from tests.plugins import coop_style  # noqa: F401  (registers ToyCoOp and ToyTrainer)

CLASSES = ["apple", "banana", "cherry", "date"]


@pytest.fixture
def toy_root(tmp_path):
    root = tmp_path / "data"
    make_coop_dataset(str(root), "toy_coop", "split_zhou_ToyCoOp.json", CLASSES)
    return root


@pytest.fixture
def trainer_yaml(tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text(
        "DATALOADER:\n  TRAIN_X:\n    BATCH_SIZE: 4\n  TEST:\n    BATCH_SIZE: 5\n  NUM_WORKERS: 0\n"
        "INPUT:\n  SIZE: (16, 16)\n  TRANSFORMS: ['random_flip', 'normalize']\n"
        "OPTIM:\n  NAME: sgd\n  LR: 0.05\n  MAX_EPOCH: 3\n  LR_SCHEDULER: cosine\n"
        "  WARMUP_EPOCH: 1\n  WARMUP_TYPE: constant\n  WARMUP_CONS_LR: 0.01\n"
        "TRAIN:\n  PRINT_FREQ: 2\n"
    )
    return path


@pytest.fixture
def dataset_yaml(tmp_path):
    path = tmp_path / "toy_coop.yaml"
    path.write_text("DATASET:\n  NAME: ToyCoOp\n")
    return path


def run(root, out, dataset_yaml, trainer_yaml, *opts, seed=1, extra=()):
    argv = [
        "--root",
        str(root),
        "--seed",
        str(seed),
        "--trainer",
        "ToyTrainer",
        "--dataset-config-file",
        str(dataset_yaml),
        "--config-file",
        str(trainer_yaml),
        "--output-dir",
        str(out),
        *extra,
        *[str(o) for o in opts],
    ]
    return train.main(train.parse_args(argv))


# ---------------------------------------------------------------- config


def test_merge_order_defaults_yaml_flags_opts(tmp_path, dataset_yaml, trainer_yaml):
    args = train.parse_args(
        [
            "--dataset-config-file",
            str(dataset_yaml),
            "--config-file",
            str(trainer_yaml),
            "--root",
            "/data",
            "--seed",
            "0",
            "--backbone",
            "ViT-B/32",
            "OPTIM.MAX_EPOCH",
            "7",
            "TRAINER.BLACKVIP.P_EPS",
            "1",
        ]
    )
    cfg = train.setup_cfg(args)
    assert cfg.DATASET.NAME == "ToyCoOp"  # dataset yaml
    assert cfg.OPTIM.NAME == "sgd" and cfg.OPTIM.LR == 0.05  # trainer yaml over defaults
    assert cfg.OPTIM.MAX_EPOCH == 7  # opts over trainer yaml
    assert cfg.DATASET.ROOT == "/data" and cfg.MODEL.BACKBONE.NAME == "ViT-B/32"  # flags
    assert cfg.SEED == 0  # --seed 0 is a seed, not "unset"
    assert cfg.TRAINER.BLACKVIP.P_EPS == 1.0 and isinstance(cfg.TRAINER.BLACKVIP.P_EPS, float)  # int for float
    assert cfg.INPUT.SIZE == (16, 16) and cfg.TRAINER.BLACKVIP.SPSA_PARAMS == [0.0, 0.001, 40.0, 0.6, 0.1]
    assert cfg.is_frozen()


def test_trainer_yaml_overrides_dataset_yaml(tmp_path, dataset_yaml):
    later = tmp_path / "later.yaml"
    later.write_text("DATASET:\n  NAME: Other\n")
    cfg = train.setup_cfg(train.parse_args(["--dataset-config-file", str(dataset_yaml), "--config-file", str(later)]))
    assert cfg.DATASET.NAME == "Other"


def test_reference_keys_and_defaults_present():
    cfg = train.setup_cfg(train.parse_args([]))
    assert cfg.TRAINER.BAR.SIMGA == 1.0 and cfg.TRAINER.BAR.LRS == [0.01, 0.0001]
    assert cfg.TRAINER.VPOUR.SP_AVG == 5 and cfg.TRAINER.BLACKVIP.SRC_DIM == 1568
    assert cfg.DATASET.COLOUR_BIASED_MNIST.RANDOMIZE is True and cfg.DATASET.LOCMNIST.F_SIZE == 4
    assert cfg.DATASET.SUBSAMPLE_CLASSES == "all" and cfg.SEED == -1
    assert train.setup_cfg(train.parse_args(["--randomize", "0"])).DATASET.COLOUR_BIASED_MNIST.RANDOMIZE is False


@pytest.mark.parametrize(
    "opts,error,words",
    [
        (
            ["OPTIM.MAX_EPOH", "3"],
            KeyError,
            ["Non-existent config key: OPTIM.MAX_EPOH", 'Did you mean "OPTIM.MAX_EPOCH"'],
        ),
        (["OPTIM.LR", "fast"], ValueError, ["OPTIM.LR expects a float", "'fast'"]),
        (["OPTIM.MAX_EPOCH", "2.5"], ValueError, ["OPTIM.MAX_EPOCH expects a int"]),
        (["OPTIM.LR"], ValueError, ["KEY VALUE pairs"]),
    ],
)
def test_config_errors_are_actionable(opts, error, words):
    with pytest.raises(error) as info:
        train.setup_cfg(train.parse_args(opts))
    for word in words:
        assert word in str(info.value)


def test_unknown_key_in_yaml_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("OPTIM:\n  LERNING_RATE: 0.1\n")
    with pytest.raises(KeyError, match="OPTIM.LERNING_RATE.*bad.yaml"):
        train.setup_cfg(train.parse_args(["--config-file", str(bad)]))


def test_missing_config_file():
    with pytest.raises(FileNotFoundError, match="trainer config file"):
        train.setup_cfg(train.parse_args(["--config-file", "no/such.yaml"]))


# ---------------------------------------------------------------- registries


def test_registry_duplicate_and_unknown_names():
    reg = Registry("THING")

    @reg.register()
    class Alpha:
        pass

    assert reg.get("Alpha") is Alpha and reg.registered_names() == ["Alpha"]
    with pytest.raises(KeyError, match='already registered in "THING"'):
        reg.register(Alpha)
    reg.register(Alpha, force=True)
    with pytest.raises(KeyError, match='Did you mean "Alpha"'):
        reg.get("Alpah")
    with pytest.raises(ValueError, match=r"do you mean \[Alpha\]"):
        check_availability("Alpah", reg.registered_names())


def test_unknown_trainer_suggests_closest(toy_root, tmp_path, dataset_yaml, trainer_yaml):
    argv = [
        "--root",
        str(toy_root),
        "--trainer",
        "ToyTrainr",
        "--dataset-config-file",
        str(dataset_yaml),
        "--config-file",
        str(trainer_yaml),
        "--output-dir",
        str(tmp_path / "o"),
    ]
    with pytest.raises(ValueError, match=r"do you mean \[ToyTrainer\]"):
        train.main(train.parse_args(argv))


# ---------------------------------------------------------------- datasets


def test_datum_and_fewshot_determinism(tmp_path):
    img = tmp_path / "x.png"
    img.write_bytes(b"")
    items = [Datum(str(img), label=i % 3, classname=f"c{i % 3}") for i in range(30)]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Datum(str(tmp_path / "missing.png"))
    import random

    base = DatasetBase(train_x=items)
    assert base.num_classes == 3 and base.classnames == ["c0", "c1", "c2"]
    random.seed(5)
    a = base.generate_fewshot_dataset(items, num_shots=4)
    random.seed(5)
    b = base.generate_fewshot_dataset(items, num_shots=4)
    random.seed(6)
    c = base.generate_fewshot_dataset(items, num_shots=4)
    assert [id(x) for x in a] == [id(x) for x in b] != [id(x) for x in c]
    assert len(a) == 12 and all(sum(x.label == k for x in a) == 4 for k in range(3))
    assert len(base.generate_fewshot_dataset(items, num_shots=20)) == 30  # fewer than K: keep all


def test_fewshot_cache_name_and_round_trip(toy_root, tmp_path, dataset_yaml, trainer_yaml):
    run(toy_root, tmp_path / "a", dataset_yaml, trainer_yaml, "DATASET.NUM_SHOTS", 2, "OPTIM.MAX_EPOCH", 1, seed=3)
    cache = toy_root / "toy_coop" / "split_fewshot" / "shot_2-seed_3.pkl"
    assert cache.exists()
    with open(cache, "rb") as f:
        data = pickle.load(f)
    assert len(data["train"]) == 2 * len(CLASSES) and len(data["val"]) == 2 * len(CLASSES)
    assert type(data["train"][0]).__module__ == "dassl.data.datasets.base_dataset"
    log = (tmp_path / "a" / "log.txt").read_text()
    assert "Saving preprocessed few-shot data to" in log
    run(toy_root, tmp_path / "b", dataset_yaml, trainer_yaml, "DATASET.NUM_SHOTS", 2, "OPTIM.MAX_EPOCH", 1, seed=3)
    assert "Loading preprocessed few-shot data from" in (tmp_path / "b" / "log.txt").read_text()


def test_missing_data_folder_is_a_clear_error(tmp_path, dataset_yaml, trainer_yaml):
    with pytest.raises(FileNotFoundError) as info:
        run(tmp_path / "nowhere", tmp_path / "o", dataset_yaml, trainer_yaml)
    msg = str(info.value)
    assert "nowhere" in msg and "--root" in msg and "datasets.prepare ToyCoOp" in msg


# ---------------------------------------------------------------- end to end, checkpoints, resume


def test_coop_style_plugins_run_end_to_end(toy_root, tmp_path, dataset_yaml, trainer_yaml):
    out = tmp_path / "out"
    results = run(toy_root, out, dataset_yaml, trainer_yaml)
    log = (out / "log.txt").read_text()
    assert "Loading trainer: ToyTrainer" in log and "Loading dataset: ToyCoOp" in log
    assert "epoch [3/3] batch [6/6]" in log and "lr " in log
    after = log.split("Finish training", 1)[1]
    for line in (
        "Deploy the last-epoch model",
        "Evaluate on the *test* set",
        "=> result",
        "* total: 16",
        "* accuracy: ",
        "* error: ",
        "* macro_f1: ",
        "Elapsed: ",
    ):
        assert line in after
    assert (out / "model" / "model.pth.tar-3").exists()
    assert (out / "model" / "checkpoint").read_text().strip() == "model.pth.tar-3"
    written = json.loads((out / "results.json").read_text())
    assert written == json.loads(json.dumps(results))
    for key in (
        "accuracy",
        "macro_f1",
        "error",
        "learnable_parameters",
        "wall_time_s",
        "dataset",
        "trainer",
        "seed",
        "shots",
        "config",
    ):
        assert key in written
    assert written["trainer"] == "ToyTrainer" and written["dataset"] == "ToyCoOp" and written["seed"] == 1
    acc = float(after.split("* accuracy: ")[1].split("%")[0])
    assert abs(written["accuracy"] - acc) < 0.05 and abs(written["error"] - (100 - written["accuracy"])) < 1e-6
    assert written["config"]["OPTIM"]["MAX_EPOCH"] == 3
    assert written["learnable_parameters"] == sum(p.numel() for p in coop_style.TinyNet(4, 16).parameters())
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]


def test_checkpoint_layout_matches_dassl(toy_root, tmp_path, dataset_yaml, trainer_yaml):
    out = tmp_path / "out"
    run(toy_root, out, dataset_yaml, trainer_yaml, "TRAIN.CHECKPOINT_FREQ", 1)
    for n in (1, 2, 3):
        ckpt = load_checkpoint(str(out / "model" / f"model.pth.tar-{n}"))
        assert ckpt["epoch"] == n
        assert set(ckpt) >= {"state_dict", "epoch", "optimizer", "scheduler", "val_result"}
        assert "fc.weight" in ckpt["state_dict"]


def test_eval_only_loads_a_checkpoint(toy_root, tmp_path, dataset_yaml, trainer_yaml):
    out = tmp_path / "out"
    trained = run(toy_root, out, dataset_yaml, trainer_yaml, "TRAIN.CHECKPOINT_FREQ", 1)
    evaluated = run(
        toy_root,
        tmp_path / "ev",
        dataset_yaml,
        trainer_yaml,
        extra=["--eval-only", "--model-dir", str(out), "--load-epoch", "3"],
    )
    assert evaluated["accuracy"] == trained["accuracy"] and evaluated["eval_only"] is True
    latest = run(toy_root, tmp_path / "ev2", dataset_yaml, trainer_yaml, extra=["--eval-only", "--model-dir", str(out)])
    assert latest["accuracy"] == trained["accuracy"]
    with pytest.raises(FileNotFoundError, match="model.pth.tar-9"):
        run(
            toy_root,
            tmp_path / "ev3",
            dataset_yaml,
            trainer_yaml,
            extra=["--eval-only", "--model-dir", str(out), "--load-epoch", "9"],
        )


class Interrupt(Exception):
    pass


def test_interrupted_run_resumes_to_identical_weights(toy_root, tmp_path, dataset_yaml, trainer_yaml, monkeypatch):
    opts = ("TRAIN.CHECKPOINT_FREQ", 1, "DATASET.NUM_SHOTS", 4)
    full = tmp_path / "full"
    run(toy_root, full, dataset_yaml, trainer_yaml, *opts)

    part = tmp_path / "part"
    original = coop_style.ToyTrainer.after_epoch

    def after_epoch_then_die(self):
        original(self)
        if self.epoch == 0:
            raise Interrupt

    monkeypatch.setattr(coop_style.ToyTrainer, "after_epoch", after_epoch_then_die)
    with pytest.raises(Interrupt):
        run(toy_root, part, dataset_yaml, trainer_yaml, *opts)
    monkeypatch.setattr(coop_style.ToyTrainer, "after_epoch", original)
    assert (part / "model" / "model.pth.tar-1").exists() and not (part / "results.json").exists()

    run(toy_root, part, dataset_yaml, trainer_yaml, *opts)
    log = (part / "log.txt").read_text()
    assert "resumed on" in log and "Previous epoch: 1" in log and "Finish training" in log
    a = load_checkpoint(str(full / "model" / "model.pth.tar-3"))
    b = load_checkpoint(str(part / "model" / "model.pth.tar-3"))
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"]


def test_log_is_not_overwritten_for_eval_runs(toy_root, tmp_path, dataset_yaml, trainer_yaml):
    out = tmp_path / "out"
    run(toy_root, out, dataset_yaml, trainer_yaml, "OPTIM.MAX_EPOCH", 1)
    run(toy_root, out, dataset_yaml, trainer_yaml, "OPTIM.MAX_EPOCH", 1, extra=["--eval-only"])
    logs = sorted(f for f in os.listdir(out) if f.startswith("log.txt"))
    assert len(logs) == 2 and logs[0] == "log.txt" and logs[1].startswith("log.txt-")


# ---------------------------------------------------------------- evaluator


def test_evaluator_prints_dassl_block(capsys):
    from dassl.evaluation import build_evaluator

    cfg = get_cfg_default()
    cfg.TEST.PER_CLASS_RESULT = True
    ev = build_evaluator(cfg, lab2cname={0: "a", 1: "b"})
    assert capsys.readouterr().out == "Loading evaluator: Classification\n"
    ev.process(torch.tensor([[2.0, 1.0], [0.0, 1.0], [3.0, 0.0], [1.0, 0.0]]), torch.tensor([0, 1, 1, 1]))
    res = ev.evaluate()
    out = capsys.readouterr().out.splitlines()
    assert out[:6] == [
        "=> result",
        "* total: 4",
        "* correct: 2",
        "* accuracy: 50.0%",
        "* error: 50.0%",
        "* macro_f1: 50.0%",
    ]
    assert out[6] == "=> per-class result" and out[7] == "* class: 0 (a)\ttotal: 1\tcorrect: 1\tacc: 100.0%"
    assert out[-1] == "* average: 66.7%"
    assert res["accuracy"] == 50.0 and res["error_rate"] == 50.0 and abs(res["macro_f1"] - 50.0) < 1e-9


def test_evaluator_thousands_separator(capsys):
    from dassl.evaluation import Classification

    ev = Classification(get_cfg_default())
    ev.process(torch.eye(2).repeat(600, 1), torch.tensor([0, 1] * 600))
    ev.evaluate()
    assert "* total: 1,200" in capsys.readouterr().out


def test_checkpoint_files_are_written_atomically(tmp_path, monkeypatch):
    from dassl.utils import save_checkpoint

    save_checkpoint({"state_dict": {"w": torch.ones(2)}, "epoch": 1}, str(tmp_path))

    def broken_save(obj, f, *a, **k):
        f.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint({"state_dict": {"w": torch.zeros(2)}, "epoch": 2}, str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "model.pth.tar-1"]
    assert (tmp_path / "checkpoint").read_text().strip() == "model.pth.tar-1"
    assert torch.equal(load_checkpoint(str(tmp_path / "model.pth.tar-1"))["state_dict"]["w"], torch.ones(2))
    assert osp.getsize(tmp_path / "model.pth.tar-1") > 0
