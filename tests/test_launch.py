"""scripts/launch.py and scripts/recipes.py: a new method family launched from its plugin module and recipe file
alone, the EXTRA checksum, argument spelling, settings, and recipe errors that say what to fix."""

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import launch, recipes

REPO = Path(__file__).resolve().parents[1]

PLUGIN = '''
"""A method outside the tree: registered by BBVP_PLUGINS, launched from its recipe in BBVP_RECIPES."""
from dassl.engine import TRAINER_REGISTRY
from trainers.vpwb import VPWB


@TRAINER_REGISTRY.register()
class ToyPrompt(VPWB):
    label = "Toy prompt"
    script_family = "toy"
    table_order = 60
'''

RECIPE = """
trainer: ToyPrompt
path: "{cfg}/shot{shots}_ep{epoch}/lr{lr}_w{width}"
opts:
  OPTIM.MAX_EPOCH: "{epoch}"
  OPTIM.LR: "{lr}"
  TRAINER.VPWB.PROMPT_SIZE: "{width}"
fixed: {width: 8}
scripts:
  tl_bench:
    help: "Toy prompt on a benchmark.\\n  DATASET EPOCH LR"
    example: svhn 10 0.5
    args: {dataset: dataset, epoch: positive_int, lr: number}
    setting: "{dataset}"
    fixed: {cfg: vit_b16}
    paper: {rows: transfer.datasets, args: {dataset: name, epoch: epochs.whitebox, lr: vpwb.lr}}
  synthetic_lm:
    help: Toy prompt on Loc-MNIST.
    example: 4 0.5
    args: {fsize: positive_int, lr: number}
    setting: "locmnist_r1_f{fsize}"
    fixed: {cfg: vit_b16_noaug, epoch: 100}
  paper_row:
    help: The toy row.
    example: svhn
    args: {name: paper_names}
"""


@pytest.fixture
def plugin(tmp_path):
    """A plugin module and a recipe folder outside the repository, and the environment that names them."""
    (tmp_path / "toy_method.py").write_text(PLUGIN)
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "toy.yaml").write_text(RECIPE)
    return {
        "BBVP_PLUGINS": str(tmp_path / "toy_method.py"),
        "BBVP_RECIPES": str(tmp_path / "recipes"),
        "DATA": str(tmp_path / "data"),
        "OUTPUT": str(tmp_path / "out"),
        "SEEDS": "1",
        "DRY_RUN": "1",
        "PYTHON": sys.executable,
    }


def launch_cli(*args, env, cwd=REPO):
    full = {"PATH": "/usr/bin:/bin", **env}
    return subprocess.run(
        [sys.executable, "-m", "scripts.launch", *map(str, args)], cwd=cwd, env=full, capture_output=True, text=True
    )


def run_lines(stdout):
    return [shlex.split(line[len("Run: ") :]) for line in stdout.splitlines() if line.startswith("Run: ")]


def test_a_plugin_family_launches_from_its_recipe_alone(plugin):
    proc = launch_cli("toy", "tl_bench", "svhn", "010", "0.50", env=plugin)
    assert proc.returncode == 0, proc.stderr
    [cmd] = run_lines(proc.stdout)
    out = f"{plugin['OUTPUT']}/svhn/ToyPrompt/vit_b16/shot16_ep10/lr0.5_w8/seed1"
    assert cmd == [
        sys.executable,
        "train.py",
        "--root",
        plugin["DATA"],
        "--seed",
        "1",
        "--trainer",
        "ToyPrompt",
        "--dataset-config-file",
        "configs/datasets/svhn.yaml",
        "--config-file",
        "configs/trainers/ToyPrompt/vit_b16.yaml",
        "--output-dir",
        out,
        "OPTIM.MAX_EPOCH",
        "10",
        "OPTIM.LR",
        "0.5",
        "TRAINER.VPWB.PROMPT_SIZE",
        "8",
        "DATASET.NUM_SHOTS",
        "16",
        "DATASET.SUBSAMPLE_CLASSES",
        "all",
        "TRAIN.CHECKPOINT_FREQ",
        "500",
    ]
    assert not Path(plugin["OUTPUT"]).exists()


def test_a_plugin_family_runs_synthetic_settings_and_its_paper_row(plugin):
    proc = launch_cli("toy", "synthetic_lm", 7, 0.5, env={**plugin, "EPOCHS": "3", "EXTRA": "A.B 1"})
    assert proc.returncode == 0, proc.stderr
    [cmd] = run_lines(proc.stdout)
    assert cmd[cmd.index("--output-dir") + 1].startswith(
        f"{plugin['OUTPUT']}/locmnist_r1_f7/ToyPrompt/vit_b16_noaug/shot16_ep3/lr0.5_w8_x"
    )
    assert cmd[cmd.index("--output-dir") + 2 :][:4] == ["DATASET.LOCMNIST.R_SIZE", "1", "DATASET.LOCMNIST.F_SIZE", "7"]
    assert cmd[-2:] == ["A.B", "1"]
    row = launch_cli("toy", "paper_row", "eurosat", env=plugin)
    assert row.returncode == 0, row.stderr
    assert "== python -m scripts.launch toy tl_bench eurosat 1000 40.0" in row.stdout
    [cmd] = run_lines(row.stdout)
    assert "/eurosat/ToyPrompt/vit_b16/shot16_ep1000/lr40_w8/seed1" in cmd[cmd.index("--output-dir") + 1]


def test_the_plugin_trainer_is_registered_with_its_label(plugin):
    code = "from trainers.methods import method_label; print(method_label('ToyPrompt'))"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env={"PATH": "/usr/bin:/bin", **plugin}, text=True, capture_output=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Toy prompt"


def test_script_help_and_bad_arguments_name_the_launcher(plugin):
    proc = launch_cli("toy", "tl_bench", "--help", env=plugin)
    assert proc.returncode == 0
    assert proc.stdout.startswith("Usage: python -m scripts.launch toy tl_bench DATASET EPOCH LR\n")
    proc = launch_cli("toy", "tl_bench", "svhn", 10, "fast", env=plugin)
    assert proc.returncode == 2 and "Error: LR must be a number, got 'fast'" in proc.stderr
    assert "Example: python -m scripts.launch toy tl_bench svhn 10 0.5" in proc.stderr


def test_unknown_family_or_script_lists_what_exists(plugin):
    proc = launch_cli("nope", "tl_bench", env=plugin)
    assert proc.returncode == 2 and "no recipe for method family 'nope'" in proc.stderr
    assert "blackvip" in proc.stderr and "toy" in proc.stderr and "BBVP_RECIPES" in proc.stderr
    proc = launch_cli("toy", "ablation", env=plugin)
    assert proc.returncode == 2 and "no script 'ablation' (scripts: tl_bench synthetic_lm paper_row)" in proc.stderr


# ---------------------------------------------------------------- units


def test_extra_suffix_is_the_posix_cksum():
    for text in (b"", b"a", b"TARGET.CHECKPOINT /w/ViT-B-16.pt", bytes(range(256)) * 3):
        expected = subprocess.run(["cksum"], input=text, capture_output=True, check=True).stdout.split()[0]
        assert launch.cksum(text) == int(expected)


@pytest.mark.parametrize(
    "value,canonical",
    [("1.0", "1"), (".90", "0.9"), ("5e-3", "0.005"), ("+40", "40"), ("0.12345678901", "0.123456789")],
)
def test_numbers_have_one_spelling(value, canonical):
    assert launch.number("X", value) == canonical


@pytest.mark.parametrize("value", ["nan", "inf", "1e400", "0x10", "1,5", ""])
def test_what_is_not_a_finite_number_is_refused(value):
    with pytest.raises(launch.UsageError, match=f"X must be a number, got '{value}'"):
        launch.number("X", value)


def test_settings_come_from_the_catalog():
    assert launch.resolve_setting("svhn") == ("svhn", ())
    stem, opts = launch.resolve_setting("colour_biased_mnist_hard")
    assert stem == "colour_biased_mnist"
    assert opts == ("DATASET.COLOUR_BIASED_MNIST.TRAIN_RHO", "0.9", "DATASET.COLOUR_BIASED_MNIST.TEST_RHO", "0.1")
    assert launch.resolve_setting("locmnist_r1_f12") == (
        "locmnist",
        ("DATASET.LOCMNIST.R_SIZE", "1", "DATASET.LOCMNIST.F_SIZE", "12"),
    )
    with pytest.raises(launch.UsageError, match="unknown dataset 'locmnist_r1_f0'"):
        launch.resolve_setting("locmnist_r1_f0")
    assert launch.expand_settings(["locmnist", "svhn"]) == ["locmnist_r1_f1", "locmnist_r1_f4", "svhn"]


@pytest.mark.parametrize(
    "change,message",
    [
        (
            ("args: {dataset: dataset, epoch: positive_int, lr: number}", "args: {dataset: dataset, epoch: count}"),
            "argument epoch has kind 'count'",
        ),
        (("lr{lr}_w{width}", "lr{lr}_w{depth}"), "names {depth}, which is none of its arguments"),
        (('    setting: "{dataset}"\n', ""), "scripts.tl_bench: missing setting"),
        (("    example: svhn 10 0.5\n", "    example: svhn 10 0.5\n    epochs: 3\n"), "unknown epochs"),
    ],
)
def test_a_broken_recipe_says_what_to_fix(tmp_path, monkeypatch, change, message):
    (tmp_path / "toy.yaml").write_text(RECIPE.replace(*change))
    monkeypatch.setenv("BBVP_RECIPES", str(tmp_path))
    with pytest.raises(recipes.RecipeError, match=message) as error:
        recipes.load_recipe("toy")
    assert str(tmp_path / "toy.yaml") in str(error.value)


def test_a_family_defined_twice_is_refused(tmp_path, monkeypatch):
    (tmp_path / "vpwb.yaml").write_text(RECIPE)
    monkeypatch.setenv("BBVP_RECIPES", str(tmp_path))
    with pytest.raises(recipes.RecipeError, match="two recipes for family 'vpwb'"):
        recipes.load_recipe("vpwb")


def test_every_built_in_recipe_loads_and_has_its_entry_points():
    for family in ("bar", "blackvip", "vpour", "vpwb", "zsclip"):
        recipe = recipes.load_recipe(family)
        for script in recipe.scripts:
            assert (REPO / "scripts" / family / f"{script}.sh").is_file(), (family, script)


# ---------------------------------------------------------------- launchers (LAUNCHER, JOBS; SLURM in test_slurm.py)


def test_local_jobs_run_side_by_side_one_gpu_each_and_failures_are_reported_with_their_log(tmp_path, capsys):
    from scripts.runners import ParallelRunner, Run, read_index

    runner = ParallelRunner(jobs=2, output=str(tmp_path), gpus=["3", "5"])
    probe = (
        "import os, sys, time; s = time.time(); time.sleep(0.5); "
        "print(os.environ['CUDA_VISIBLE_DEVICES'], s, time.time()); sys.exit({})"
    )
    for name, code in (("a", 0), ("b", 3), ("c", 0)):
        assert runner.run(Run(str(tmp_path / name), [sys.executable, "-c", probe.format(code)])) == 0
    assert runner.finish() == 1
    out, err = capsys.readouterr()
    assert "Started on GPU 3" in out and "Started on GPU 5" in out and out.count("Finished: ") == 2
    log = tmp_path / ".jobs" / "local" / "b.log"
    assert f"{tmp_path / 'b'}: exit status 3; output in {log}" in err
    seen = {n: (tmp_path / ".jobs" / "local" / f"{n}.log").read_text().split() for n in "abc"}
    assert seen["a"][0] == "3" and seen["b"][0] == "5" and seen["c"][0] in ("3", "5")
    a_start, a_end, b_start, b_end, c_start = (float(seen[n][int(i)]) for n, i in ("a1", "a2", "b1", "b2", "c1"))
    assert b_start < a_end and a_start < b_end  # two at once
    assert c_start >= min(a_end, b_end)  # the third waited for a free slot
    assert set(read_index(str(tmp_path))) == {str(tmp_path / n) for n in "abc"}


@pytest.mark.parametrize(
    "env, message",
    [
        ({"LAUNCHER": "pbs"}, "LAUNCHER must be local or slurm, got 'pbs'"),
        ({"JOBS": "0"}, "JOBS must be a positive integer, got '0'"),
        ({"LAUNCHER": "slurm", "GPUS": "two"}, "GPUS (or gpus in LAUNCHER_CONFIG) must be int, got 'two'"),
        ({"LAUNCHER": "slurm", "LAUNCHER_CONFIG": "/nowhere.yaml"}, "LAUNCHER_CONFIG names /nowhere.yaml"),
    ],
)
def test_bad_launcher_settings_print_usage(env, message, tmp_path):
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "vpwb" / "tl_bench.sh"), "svhn", "1", "1.0"],
        cwd=tmp_path,
        env={**__import__("os").environ, "PYTHON": sys.executable, **env},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and message in proc.stderr and "LAUNCHER=local|slurm" in proc.stderr


def test_slurm_settings_read_the_launcher_config_and_the_environment_wins(tmp_path):
    from scripts.runners import LauncherError, slurm_settings

    config = tmp_path / "cluster.yaml"
    config.write_text("partition: gpu\naccount: lab\ngpus: 0\ntime_min: 600\n")
    settings = slurm_settings({"LAUNCHER_CONFIG": str(config), "GPUS": "1", "MEM_GB": "32"})
    assert settings["partition"] == "gpu" and settings["account"] == "lab" and settings["gpus"] == 1
    assert settings["time_min"] == 600 and settings["mem_gb"] == 32 and settings["cpus"] == 4
    with pytest.raises(LauncherError, match=r"GPUS must be 0 or 1 with LAUNCHER=slurm, got 2"):
        slurm_settings({"GPUS": "2"})
    config.write_text("partitoin: gpu\n")
    with pytest.raises(LauncherError, match=r"unknown keys \['partitoin'\]; known: partition, account"):
        slurm_settings({"LAUNCHER_CONFIG": str(config)})


def test_when_squeue_does_not_answer_no_run_is_resubmitted_or_called_failed(tmp_path, monkeypatch, capsys):
    from scripts import runners, sweep_status

    run = tmp_path / "svhn" / "seed1"
    runners.record_submission(str(tmp_path), {"run": str(run), "launcher": "slurm", "job_id": "7_0", "log": "x"})
    monkeypatch.setattr(runners, "slurm_queue", lambda: None)
    monkeypatch.setattr(sweep_status, "slurm_queue", lambda: None)
    runner = runners.SlurmRunner(output=str(tmp_path), settings=runners.slurm_settings({"GPUS": "0"}))
    with pytest.raises(runners.LauncherError, match=r"squeue did not answer, so it is unknown whether job 7_0"):
        runner.already_queued(str(run))
    assert sweep_status.main([str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "unknown (squeue did not answer)" in out and "squeue did not answer" in err


def test_with_gpus_local_jobs_never_exceed_one_run_per_gpu(tmp_path):
    from scripts.runners import ParallelRunner, Run

    runner = ParallelRunner(jobs=3, output=str(tmp_path), gpus=["0"])
    probe = (
        "import os, time; s = time.time(); time.sleep(0.3); print(os.environ['CUDA_VISIBLE_DEVICES'], s, time.time())"
    )
    for name in "ab":
        runner.run(Run(str(tmp_path / name), [sys.executable, "-c", probe]))
    assert runner.finish() == 0
    a, b = ((tmp_path / ".jobs" / "local" / f"{n}.log").read_text().split() for n in "ab")
    assert a[0] == b[0] == "0" and float(b[1]) >= float(a[2])  # the second waited for the GPU


def test_a_preset_replaces_the_scripts_estimator_settings_and_gets_its_own_folder(tmp_path):
    env = {"DATA": str(tmp_path / "d"), "OUTPUT": str(tmp_path / "o"), "DRY_RUN": "1", "SEEDS": "1"}
    proc = launch_cli("blackvip", "tl_bench", "eurosat", 5000, 0.9, 0.2, 0.005, 1.0, env={**env, "PRESET": "efficient"})
    assert proc.returncode == 0, proc.stderr
    [cmd] = run_lines(proc.stdout)
    out = cmd[cmd.index("--output-dir") + 1]
    assert out.endswith("_eps1.0_efficient/seed1") or out.endswith("_eps1_efficient/seed1"), out
    opts = dict(zip(cmd[cmd.index(out) + 1 :: 2], cmd[cmd.index(out) + 2 :: 2]))
    assert opts["TRAINER.BLACKVIP.OPT_TYPE"] == "prompt-spsa-gc" and opts["TRAINER.BLACKVIP.SP_AVG"] == "1"
    assert opts["TRAINER.BLACKVIP.SPSA_PARAMS"] == "[20.0,0.05,0.003,0.4,0.1]"
    assert cmd.count("TRAINER.BLACKVIP.OPT_TYPE") == 1  # the script's own value is replaced, not repeated
    assert opts["TRAINER.BLACKVIP.P_EPS"] == "1.0" or opts["TRAINER.BLACKVIP.P_EPS"] == "1"  # kept from the script

    missing = launch_cli("bar", "tl_bench", "eurosat", 5000, 10.0, 0.1, env={**env, "PRESET": "efficient"})
    assert missing.returncode == 2
    assert "no preset 'efficient' for BAR" in missing.stderr + missing.stdout
