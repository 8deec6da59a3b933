"""train.py as a command: ``--help`` lists trainers, datasets and configs without importing the heavy modules, and
known user errors print one ``error:`` line and exit with 2 (``BBVP_TRACEBACK=1`` shows the traceback)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import train
from tests.helpers.dataset_layouts import MINI

REPO = Path(__file__).resolve().parents[1]


def run_train(*args, cwd=REPO, **env):
    full_env = {**{k: v for k, v in os.environ.items() if k != "BBVP_PLUGINS"}, "OMP_NUM_THREADS": "1", **env}
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), *map(str, args)], cwd=cwd, env=full_env, capture_output=True, text=True
    )


def test_help_lists_what_the_registries_hold_after_loading_every_plugin():
    """In a process of its own: other tests register toy plugins in this one."""
    code = (
        "import train\n"
        "from dassl.data.datasets import DATASET_REGISTRY\n"
        "from dassl.engine import TRAINER_REGISTRY\n"
        "static = train.static_names()\n"
        "train.load_plugins()\n"
        "assert sorted(static['TRAINER_REGISTRY']) == sorted(TRAINER_REGISTRY.registered_names()), static\n"
        "assert sorted(static['DATASET_REGISTRY']) == sorted(DATASET_REGISTRY.registered_names()), static\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "BBVP_PLUGINS"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_help_imports_neither_torch_nor_the_plugins():
    code = (
        "import sys, train\n"
        "try:\n    train.parse_args(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'open_clip', 'transformers', 'trainers.plugins') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "BBVP_PLUGINS"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "registered trainers: BAR, BLACKVIP, FT, LP, VPOUR, VPWB, ZeroshotCLIP" in out
    assert "SVHN" in out and "ImageNet" in out and "LocMNIST" in out
    assert (
        "dataset configs (configs/datasets/NAME.yaml): caltech101" in out and "  BLACKVIP: rn101, rn50, vit_b16" in out
    )


def test_help_with_a_user_plugin_lists_its_names(tmp_path):
    plugin = tmp_path / "my_method.py"
    plugin.write_text(
        "from dassl.engine import TRAINER_REGISTRY\n"
        "from dassl.engine.trainer import TrainerX\n\n\n"
        "@TRAINER_REGISTRY.register()\nclass MyMethod(TrainerX):\n    pass\n"
    )
    proc = run_train("--plugin", plugin, "--help")
    assert proc.returncode == 0 and "MyMethod" in proc.stdout


def test_registered_in_reads_names_given_to_register():
    source = (
        "@TRAINER_REGISTRY.register()\nclass A: pass\n"
        "@TRAINER_REGISTRY.register(name='b')\nclass B: pass\n"
        "@OTHER.register()\nclass C: pass\n"
    )
    assert train.registered_in(source, "TRAINER_REGISTRY") == ["A", "b"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--trainer", "VPOURR"], 'error: unknown trainer "VPOURR" (do you mean [VPOUR]?); registered trainers: BAR,'),
        (
            [
                "--trainer",
                "ZeroshotCLIP",
                "--dataset-config-file",
                "configs/datasets/svhn.yaml",
                "DATASET.NAME",
                "Nope",
            ],
            'error: unknown dataset "Nope"; registered datasets: ',
        ),
        (["--trainer", "BLACKVIP", "--config-file", "no/such.yaml"], 'error: The trainer config file "no/such.yaml"'),
    ],
    ids=["trainer", "dataset", "config-file"],
)
def test_known_user_errors_exit_2_with_one_message(args, message, tmp_path):
    proc = run_train("--output-dir", tmp_path / "out", *args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(message) and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    shown = run_train("--output-dir", tmp_path / "out", *args, BBVP_TRACEBACK="1")
    assert shown.returncode == 1 and "Traceback" in shown.stderr


def test_missing_encoder_weights_exit_2_naming_the_config_key(tmp_path):
    MINI["EuroSAT"].make(tmp_path / "data")
    proc = run_train(
        "--root", tmp_path / "data",
        "--trainer", "BLACKVIP",
        "--dataset-config-file", "configs/datasets/eurosat.yaml",
        "--config-file", "configs/trainers/BLACKVIP/vit_b16.yaml",
        "--output-dir", tmp_path / "out",
        "MODEL.BACKBONE.NAME", "tiny-vit",
        "TRAINER.BLACKVIP.PT_BACKBONE", "vit-mae-base",
        "TRAINER.BLACKVIP.PT_BACKBONE_PATH", tmp_path / "no_weights",
        "DATALOADER.NUM_WORKERS", "0",
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.startswith("error: No weights found for encoder 'vit-mae-base'")
    assert "TRAINER.BLACKVIP.PT_BACKBONE_PATH" in proc.stderr and "allow_download" not in proc.stderr
