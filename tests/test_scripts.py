"""The reproduction scripts: real runs through train.py on a tiny CLIP and miniature data, resumption, dry runs
that print what a real run executes, the paper's hyper-parameters, and argument checks."""

import json
import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from tests.helpers.dataset_layouts import MINI

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
HPARAMS = yaml.safe_load((REPO / "configs" / "paper" / "hparams.yaml").read_text())
TINY = (
    "MODEL.BACKBONE.NAME tiny-vit TRAINER.BLACKVIP.PT_BACKBONE tiny-vit DATALOADER.NUM_WORKERS 0 "
    "TRAINER.BLACKVIP.SP_AVG 1 TRAINER.VPOUR.SP_AVG 1 TRAINER.BAR.SP_AVG 1 OPTIM.WARMUP_EPOCH 1"
)
SUFFIX = r"_x[0-9a-f]{8}"


REPO_OUTPUT = REPO / "output"  # where the scripts write when OUTPUT is unset, from whichever folder they run


def script_env(**env):
    """The test's environment without DATA and OUTPUT (the defaults under test), with ``env`` added."""
    base = {k: v for k, v in os.environ.items() if k not in ("DATA", "OUTPUT")}
    return {**base, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", **env}


def run_script(script, *args, cwd, shell="sh", **env):
    """Run ``scripts/<script>`` with ``shell`` (``sh``, as the reference's README does) from ``cwd`` with extra
    environment variables; returns the CompletedProcess."""
    return subprocess.run(
        [shell, str(SCRIPTS / script), *map(str, args)], cwd=cwd, env=script_env(**env), capture_output=True, text=True
    )


def commands(stdout):
    """The train.py commands a script printed (``Run: ...`` lines), as argument lists."""
    return [shlex.split(line[len("Run: ") :]) for line in stdout.splitlines() if line.startswith("Run: ")]


def output_dir(command):
    return command[command.index("--output-dir") + 1]


def opts(command):
    """The KEY VALUE overrides of a train.py command, as a dict (later keys win, as in yacs)."""
    start = next(i for i, a in enumerate(command) if re.fullmatch(r"[A-Z_]+(\.[A-Z_0-9]+)+", a))
    tail = command[start:]
    return dict(zip(tail[::2], tail[1::2]))


def g(x):
    """A number as the scripts write it in paths (``%.10g``)."""
    return f"{float(x):.10g}"


# ---------------------------------------------------------------- real runs (tiny CLIP, miniature data)

REAL = {
    # name: (script, args, environment)
    "blackvip": ("blackvip/tl_bench.sh", ["eurosat", 2, 0.9, 0.2, 0.005, "1.0"], {"SEEDS": "1 2", "CKPT_FREQ": "1"}),
    "vpour": ("vpour/tl_bench.sh", ["eurosat", 1, 0.9, "10.0", 0.01], {"SEEDS": "1 2"}),
    "bar": ("bar/tl_bench.sh", ["eurosat", 1, "5.0", 0.1], {"SEEDS": "1 2"}),
    "vpwb_row": ("vpwb/paper_row.sh", ["eurosat"], {"SEEDS": "1 2", "EPOCHS": "1"}),
    "zeroshot": ("zsclip/zeroshot_all.sh", ["eurosat"], {}),
    "vpour_lm": ("vpour/synthetic_lm.sh", [4, 0.9, 0.5, "10.0", 0.01], {"SEEDS": "1", "EPOCHS": "1"}),
    "ablation_rn": ("blackvip/ablation_arch_rn.sh", ["rn50", 0.5, 0.9, 0.2, 0.01, 0.3], {"SEEDS": "1", "EPOCHS": "1"}),
}


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """Every REAL job, dry-run first and then for real (two at a time), then an interrupted run resumed."""
    work = tmp_path_factory.mktemp("scripts")
    for name in ("EuroSAT", "LocMNIST"):
        MINI[name].make(work / "data")
    env = {"DATA": "data", "OUTPUT": "out", "SHOTS": "1", "EXTRA": TINY}  # relative to the caller's directory

    def job(name, **more):
        script, args, job_env = REAL[name]
        return run_script(script, *args, cwd=work, **env, **job_env, **more)

    dry = {name: job(name, DRY_RUN="1") for name in REAL}
    created_by_dry_run = (work / "out").exists()
    with ThreadPoolExecutor(2) as pool:
        done = dict(zip(REAL, pool.map(job, REAL)))
    for name, proc in done.items():
        assert proc.returncode == 0, f"{name}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"

    seed2 = Path(output_dir(commands(done["blackvip"].stdout)[1]))
    finished = json.loads((seed2 / "results.json").read_text())
    (seed2 / "results.json").unlink()  # as if killed during epoch 2: only the epoch-1 checkpoint remains
    (seed2 / "coordinator" / "model.pth.tar-2").unlink()
    (seed2 / "coordinator" / "checkpoint").write_text("model.pth.tar-1\n")
    resumed = job("blackvip")
    return dict(
        work=work,
        out=work / "out",
        dry=dry,
        done=done,
        created_by_dry_run=created_by_dry_run,
        seed2=seed2,
        finished=finished,
        resumed=resumed,
    )


def results_of(proc, expected_runs):
    cmds = commands(proc.stdout)
    assert len(cmds) == expected_runs
    return [(Path(output_dir(c)), json.loads((Path(output_dir(c)) / "results.json").read_text())) for c in cmds]


def test_blackvip_tl_bench_two_seeds(real):
    runs = results_of(real["done"]["blackvip"], 2)
    prefix = real["out"] / "eurosat/BLACKVIP/vit-mae-base_vit_b16/shot1_ep2/spsa-gc_b10.9/a0.4_g0.2_sa0.01_sc0.005_eps1"
    for seed, (path, results) in enumerate(runs, start=1):
        assert re.fullmatch(re.escape(str(prefix)) + SUFFIX + f"/seed{seed}", str(path))
        cfg = results["config"]
        assert results["trainer"] == "BLACKVIP" and results["dataset"] == "EuroSAT" and results["seed"] == seed
        assert cfg["TRAINER"]["BLACKVIP"]["SPSA_PARAMS"] == [1.0, 0.005, 0.01, 0.4, 0.2]
        assert cfg["TRAINER"]["BLACKVIP"]["MOMS"] == 0.9 and cfg["TRAINER"]["BLACKVIP"]["P_EPS"] == 1.0
        assert cfg["OPTIM"]["MAX_EPOCH"] == 2 and cfg["DATASET"]["NUM_SHOTS"] == 1
        assert cfg["MODEL"]["BACKBONE"]["NAME"] == "tiny-vit"  # EXTRA comes last
        assert results["queries"]["train"]["images"] > 0


def test_vpour_and_bar_tl_bench(real):
    for path, results in results_of(real["done"]["vpour"], 2):
        assert "/eurosat/VPOUR/vit_b16/shot1_ep1/spsa-gc_b10.9/a0.4_g0.1_sa10_sc0.01_x" in str(path)
        assert results["config"]["TRAINER"]["VPOUR"]["SPSA_PARAMS"] == [1.0, 0.01, 10, 0.4, 0.1]
    for path, results in results_of(real["done"]["bar"], 2):
        assert "/eurosat/BAR/vit_b16/shot1_ep1/lr5_min0.1_x" in str(path)
        assert results["config"]["TRAINER"]["BAR"]["LRS"] == [5, 0.1]
        assert results["config"]["INPUT"]["SIZE"] == [194, 194]


def test_vpwb_paper_row_uses_the_table(real):
    proc = real["done"]["vpwb_row"]
    assert "== bash scripts/vpwb/tl_bench.sh eurosat 1 40.0" in proc.stdout
    for path, results in results_of(proc, 2):
        assert "/eurosat/VPWB/vit_b16/shot1_ep1/lr40_x" in str(path)
        assert results["config"]["OPTIM"]["LR"] == 40.0 and results["trainer"] == "VPWB"


def test_zeroshot_all_evaluates_seed_one(real):
    [(path, results)] = results_of(real["done"]["zeroshot"], 1)
    assert re.search(r"/eurosat/ZeroshotCLIP/vit_b16" + SUFFIX + "/seed1$", str(path))
    assert results["eval_only"] is True and results["trainer"] == "ZeroshotCLIP"


def test_vpour_synthetic_lm_sets_vpour_keys(real):
    [(path, results)] = results_of(real["done"]["vpour_lm"], 1)
    assert "/locmnist_r1_f4/VPOUR/vit_b16_noaug/shot1_ep1/spsa-gc_b10.9/a0.5_g0.1_sa10_sc0.01_x" in str(path)
    cfg = results["config"]
    assert cfg["TRAINER"]["VPOUR"]["SPSA_PARAMS"] == [1.0, 0.01, 10, 0.5, 0.1]
    assert cfg["DATASET"]["LOCMNIST"]["F_SIZE"] == 4 and results["dataset"] == "LocMNIST"


def test_ablation_rn_uses_the_dino_layout(real):
    [(path, results)] = results_of(real["done"]["ablation_rn"], 1)
    assert "/eurosat/BLACKVIP/dino-resnet-50_rn50/shot1_ep1/spsa-gc_b10.9/a0.5_g0.2_sa0.01_sc0.01_eps0.3_x" in str(path)
    assert results["config"]["TRAINER"]["BLACKVIP"]["SRC_DIM"] == 3136


def test_results_json_holds_only_what_the_reader_knows(real):
    from dataclasses import fields

    from trainers.results import RunResults

    known = {f.name for f in fields(RunResults)}
    for path in real["out"].rglob("results.json"):
        written = json.loads(path.read_text())
        assert set(written) <= known, set(written) - known
        results = RunResults.read(str(path))
        assert (results.accuracy, results.trainer) == (written["accuracy"], written["trainer"])
        assert results.queries.images("train") == written["queries"].get("train", {}).get("images", 0)


def test_every_folder_shares_one_extra_suffix(real):
    suffixes = {m.group(0) for p in real["out"].rglob("results.json") for m in [re.search(SUFFIX, str(p))]}
    assert len(suffixes) == 1


def test_dry_run_prints_exactly_what_the_real_run_executes(real):
    assert not real["created_by_dry_run"]
    for name, proc in real["dry"].items():
        assert proc.returncode == 0, proc.stderr
        assert commands(proc.stdout) == commands(real["done"][name].stdout), name


def test_rerun_skips_finished_and_resumes_unfinished(real):
    proc = real["resumed"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"Skip: finished run in .*/seed1 \(results.json exists\)", proc.stdout)
    assert re.search(r"Resume: unfinished run in .*/seed2 \(checkpoint found\)", proc.stdout)
    assert len(commands(proc.stdout)) == 1
    log = (real["seed2"] / "log.txt").read_text()
    assert "(will resume training)" in log.split("resumed on")[-1]
    assert "epoch [2/2]" in log.split("resumed on")[-1]
    resumed = json.loads((real["seed2"] / "results.json").read_text())
    assert resumed["accuracy"] == real["finished"]["accuracy"]
    assert resumed["queries"]["train"] == real["finished"]["queries"]["train"]


def test_tables_and_parser_read_the_real_tree(real):
    from scripts import parse_test_res, tables

    runs, unfinished = tables.collect(str(real["out"]))
    assert not unfinished and len(runs) == 11
    report = tables.build_report(runs, unfinished, None)
    transfer = report.tables[0]
    assert transfer.title == "Transfer benchmarks, 1-shot" and transfer.headers[1] == "EuroSAT"
    labels = [row[0] for row in transfer.rows]
    assert labels == [
        "VP (white-box) (tiny-vit)",
        "ZS CLIP (tiny-vit)",
        "BAR (tiny-vit)",
        "VP w/ SPSA-GC (tiny-vit)",
        "BlackVIP (tiny-vit) [tiny-vit]",
    ]
    assert transfer.rows[-1][1].endswith("(2) *")  # tl_bench and the ablation share the cell, not averaged
    seeds_dir = str(real["seed2"].parent)
    assert parse_test_res.main([seeds_dir])["accuracy"] == pytest.approx(
        sum(r.accuracy for r in runs if r.variant == os.path.relpath(seeds_dir, real["out"])) / 2
    )


# ---------------------------------------------------------------- dry runs: paths, overrides, the paper's values


def dry(script, *args, tmp_path, **env):
    proc = run_script(script, *args, cwd=tmp_path, **{"DRY_RUN": "1", "SEEDS": "1", **env})
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "output").exists()
    return commands(proc.stdout)


@pytest.mark.parametrize(
    "family,trainer,path,expected",
    [
        (
            "blackvip",
            "BLACKVIP",
            "spsa-gc_b1{moms}/a0.4_g{gamma}_sa0.01_sc{spsa_c}_eps{p_eps}",
            {
                "TRAINER.BLACKVIP.SPSA_PARAMS": "[1.0,{spsa_c},0.01,0.4,{gamma}]",
                "TRAINER.BLACKVIP.MOMS": "{moms}",
                "TRAINER.BLACKVIP.P_EPS": "{p_eps}",
                "TRAINER.BLACKVIP.PT_BACKBONE": "vit-mae-base",
            },
        ),
        (
            "vpour",
            "VPOUR",
            "spsa-gc_b1{moms}/a0.4_g0.1_sa{spsa_a}_sc{spsa_c}",
            {"TRAINER.VPOUR.SPSA_PARAMS": "[1.0,{spsa_c},{spsa_a},0.4,0.1]", "TRAINER.VPOUR.MOMS": "{moms}"},
        ),
        (
            "bar",
            "BAR",
            "lr{init_lr}_min{min_lr}",
            {"TRAINER.BAR.LRS": "[{init_lr},{min_lr}]", "INPUT.SIZE": "[194,194]"},
        ),
        ("vpwb", "VPWB", "lr{lr}", {"OPTIM.LR": "{lr}"}),
    ],
)
def test_paper_row_runs_every_benchmark_with_the_table_values(family, trainer, path, expected, tmp_path):
    cmds = dry(f"{family}/paper_row.sh", tmp_path=tmp_path)
    datasets = HPARAMS["transfer"]["datasets"]
    assert len(cmds) == len(datasets) == 14
    for cmd, (dataset, row) in zip(cmds, datasets.items()):
        values = {k: g(v) for k, v in row[family].items()}
        epochs = row["epochs"]["whitebox" if family == "vpwb" else "blackbox"]
        cfg = "vit-mae-base_vit_b16" if family == "blackvip" else "vit_b16"
        want = REPO_OUTPUT / dataset / trainer / cfg / f"shot16_ep{epochs}" / path.format(**values) / "seed1"
        assert output_dir(cmd) == str(want)
        got = opts(cmd)
        assert got["OPTIM.MAX_EPOCH"] == str(epochs) and got["DATASET.NUM_SHOTS"] == "16"
        assert got["TRAIN.CHECKPOINT_FREQ"] == "500"
        for key, value in expected.items():
            assert got[key] == value.format(**values), (dataset, key)


def test_scripts_hard_code_the_fixed_values_of_the_tables(tmp_path):
    fixed = HPARAMS["transfer"]["fixed"]
    [cmd] = dry("blackvip/tl_bench.sh", "svhn", 5000, 0.9, 0.2, 0.005, "1.0", tmp_path=tmp_path)
    o, c, a, alpha, gamma = map(float, opts(cmd)["TRAINER.BLACKVIP.SPSA_PARAMS"].strip("[]").split(","))
    b = fixed["blackvip"]
    assert (o, a, alpha) == (b["o"], b["a"], b["alpha"]) and opts(cmd)["TRAINER.BLACKVIP.SP_AVG"] == str(b["sp_avg"])
    [cmd] = dry("vpour/tl_bench.sh", "svhn", 5000, 0.9, "10.0", 0.01, tmp_path=tmp_path)
    o, c, a, alpha, gamma = map(float, opts(cmd)["TRAINER.VPOUR.SPSA_PARAMS"].strip("[]").split(","))
    assert (o, alpha, gamma) == (fixed["vpour"]["o"], fixed["vpour"]["alpha"], fixed["vpour"]["gamma"])


def test_paper_row_synthetic_settings_and_ablation(tmp_path):
    cmds = dry("blackvip/paper_row.sh", "synthetic", "ablation", tmp_path=tmp_path, SHOTS="32")
    assert len(cmds) == 4 + 8
    dirs = [output_dir(c).replace(str(REPO_OUTPUT) + "/", "") for c in cmds]
    assert dirs[0] == (
        "colour_biased_mnist_easy/BLACKVIP/vit-mae-base_vit_b16_noaug/shot32_ep5000/spsa-gc_b10.9/"
        "a0.4_g0.1_sa0.01_sc0.01_eps1/seed1"
    )
    assert opts(cmds[1])["DATASET.COLOUR_BIASED_MNIST.TRAIN_RHO"] == "0.9"
    assert opts(cmds[1])["DATASET.COLOUR_BIASED_MNIST.TEST_RHO"] == "0.1"
    assert dirs[3].startswith(
        "locmnist_r1_f4/BLACKVIP/vit-mae-base_vit_b16_noaug/shot32_ep5000/spsa-gc_b10.95/a0.5_g0.1_sa0.02_sc0.01_eps1/"
    )
    assert opts(cmds[3])["DATASET.LOCMNIST.F_SIZE"] == "4"
    assert dirs[8] == (
        "eurosat/BLACKVIP/dino-resnet-50_rn50/shot32_ep5000/spsa-gc_b10.9/a0.5_g0.2_sa0.01_sc0.01_eps0.3/seed1"
    )
    assert opts(cmds[8])["TRAINER.BLACKVIP.SRC_DIM"] == "3136" and "BLACKVIP/rn50.yaml" in " ".join(cmds[8])


@pytest.mark.parametrize(
    "script,args,path",
    [
        (
            "blackvip/synthetic_bm_hard.sh",
            [0.9, 0.4, 0.01, 0.01],
            "colour_biased_mnist_hard/BLACKVIP/vit-mae-base_vit_b16_noaug/shot16_ep5000/spsa-gc_b10.9/"
            "a0.4_g0.1_sa0.01_sc0.01_eps1",
        ),
        (
            "blackvip/ablation_arch_vit.sh",
            ["vit_b32", 0.4, 0.9, 0.1, 0.01, 0.3],
            "eurosat/BLACKVIP/vit-mae-base_vit_b32/shot16_ep5000/spsa-gc_b10.9/a0.4_g0.1_sa0.01_sc0.01_eps0.3",
        ),
        (
            "vpour/synthetic_bm_easy.sh",
            [0.9, 0.4, "10.0", 0.005],
            "colour_biased_mnist_easy/VPOUR/vit_b16_noaug/shot16_ep5000/spsa-gc_b10.9/a0.4_g0.1_sa10_sc0.005",
        ),
        ("bar/synthetic_lm.sh", [1, "5.0", 0.5], "locmnist_r1_f1/BAR/vit_b16_noaug/shot16_ep5000/lr5_min0.5"),
        (
            "bar/synthetic_bm_easy.sh",
            ["5.0", 0.1],
            "colour_biased_mnist_easy/BAR/vit_b16_noaug/shot16_ep5000/lr5_min0.1",
        ),
        ("vpwb/synthetic_lm.sh", [4, "10.0"], "locmnist_r1_f4/VPWB/vit_b16_noaug/shot16_ep1000/lr10"),
        ("vpwb/synthetic_bm_hard.sh", ["40.0"], "colour_biased_mnist_hard/VPWB/vit_b16_noaug/shot16_ep1000/lr40"),
    ],
)
def test_other_scripts_name_every_hyper_parameter(script, args, path, tmp_path):
    [cmd] = dry(script, *args, tmp_path=tmp_path)
    assert output_dir(cmd) == str(REPO_OUTPUT / path / "seed1")
    trainer = path.split("/")[1]
    assert all(not k.startswith("TRAINER.") or k.startswith(f"TRAINER.{trainer}.") for k in opts(cmd))


def test_zeroshot_all_covers_benchmarks_and_synthetic_settings(tmp_path):
    cmds = dry("zsclip/zeroshot_all.sh", tmp_path=tmp_path, SEEDS="1 2 3")
    dirs = [output_dir(c).replace(str(REPO_OUTPUT) + "/", "") for c in cmds]
    assert len(dirs) == 18 and all(d.endswith("/ZeroshotCLIP/vit_b16/seed1") for d in dirs)
    assert [d.split("/")[0] for d in dirs] == [*HPARAMS["transfer"]["datasets"], *HPARAMS["synthetic"]["settings"]]
    assert all("--eval-only" in c for c in cmds)
    assert len(dry("zsclip/zeroshot_all.sh", "svhn", "locmnist", tmp_path=tmp_path)) == 3


def test_extra_gives_a_stable_suffix_per_setting(tmp_path):
    def folder(extra):
        [cmd] = dry("vpwb/tl_bench.sh", "svhn", 1000, 40, tmp_path=tmp_path, EXTRA=extra)
        return Path(output_dir(cmd)).parent.name, cmd

    plain, _ = folder("")
    a1, cmd = folder("TARGET.CHECKPOINT /w/ViT-B-16.pt")
    a2, _ = folder("TARGET.CHECKPOINT  /w/ViT-B-16.pt")
    b, _ = folder("TARGET.CHECKPOINT /w/other.pt")
    assert plain == "lr40" and a1 == a2 != b and re.fullmatch("lr40" + SUFFIX, a1)
    assert cmd[-2:] == ["TARGET.CHECKPOINT", "/w/ViT-B-16.pt"]


def test_scripts_run_from_any_directory_with_relative_roots(tmp_path):
    (tmp_path / "sub").mkdir()
    [cmd] = dry("vpwb/tl_bench.sh", "svhn", 1000, "40.0", tmp_path=tmp_path / "sub", DATA="../d", OUTPUT="o")
    assert cmd[cmd.index("--root") + 1] == str(tmp_path / "sub" / "../d")
    assert output_dir(cmd).startswith(str(tmp_path / "sub" / "o") + "/")


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_reference_readme_command_from_the_script_folder_uses_the_repository_folders(shell):
    """``cd scripts/blackvip && sh tl_bench.sh ...`` with DATA and OUTPUT unset reads and writes the repository's
    data/ and output/, not folders inside scripts/blackvip/."""
    proc = subprocess.run(
        [shell, "tl_bench.sh", "svhn", "5000", "0.9", "0.2", "0.005", "1.0"],
        cwd=SCRIPTS / "blackvip",
        env=script_env(DRY_RUN="1", SEEDS="1"),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    [cmd] = commands(proc.stdout)
    assert cmd[cmd.index("--root") + 1] == str(REPO / "data")
    assert output_dir(cmd).startswith(str(REPO_OUTPUT) + "/svhn/BLACKVIP/")
    assert not (SCRIPTS / "blackvip" / "output").exists() and not (SCRIPTS / "blackvip" / "data").exists()


@pytest.mark.parametrize(
    "alias,original,args",
    [
        ("reprogramming/tl_bench.sh", "bar/tl_bench.sh", ["svhn", 5000, "5.0", 0.1]),
        ("reprogramming/synthetic_lm.sh", "bar/synthetic_lm.sh", [1, "5.0", 0.5]),
        ("reprogramming/synthetic_bm_easy.sh", "bar/synthetic_bm_easy.sh", ["5.0", 0.5]),
        ("reprogramming/synthetic_bm_hard.sh", "bar/synthetic_bm_hard.sh", ["5.0", 0.5]),
        ("coop/zeroshot_all.sh", "zsclip/zeroshot_all.sh", []),
    ],
)
def test_reference_folder_names_run_the_same_commands(alias, original, args, tmp_path):
    assert dry(alias, *args, tmp_path=tmp_path) == dry(original, *args, tmp_path=tmp_path) != []


def test_scripts_are_posix_sh():
    """No bash-only constructs: the reference's README runs them with ``sh`` (dash on Debian and Ubuntu)."""
    for script in [*SCRIPTS.glob("*/*.sh"), SCRIPTS / "common.sh"]:
        if script.name == "quickstart.sh":
            continue
        text = script.read_text()
        assert script.name == "common.sh" or text.startswith("#!/bin/sh\n"), script
        for bashism in ("BASH_SOURCE", "pipefail", "[[", "source ", "<<<", "local ", "read -r -a"):
            assert bashism not in text, (script, bashism)
        assert subprocess.run(["sh", "-n", str(script)]).returncode == 0, script


def test_bash_and_sh_print_the_same_commands(tmp_path):
    args = ("eurosat", 2, 40, 10, 111)
    procs = [
        run_script("vpwb/prompt_designs.sh", *args, cwd=tmp_path, shell=s, DRY_RUN="1", SEEDS="1")
        for s in ("sh", "bash")
    ]
    assert procs[0].returncode == procs[1].returncode == 0 and procs[0].stdout == procs[1].stdout
    assert len(commands(procs[0].stdout)) == 6


def test_same_value_spelled_differently_shares_a_folder(tmp_path):
    [a] = dry("blackvip/tl_bench.sh", "svhn", 5000, 0.9, 0.2, 0.005, "1.0", tmp_path=tmp_path)
    [b] = dry("blackvip/tl_bench.sh", "svhn", "05000", ".90", 0.2, "5e-3", 1, tmp_path=tmp_path)
    assert output_dir(a) == output_dir(b) and opts(a) == opts(b)


# ---------------------------------------------------------------- bad arguments


ALL_SCRIPTS = sorted(str(p.relative_to(SCRIPTS)) for p in SCRIPTS.glob("*/*.sh") if p.name != "quickstart.sh")


@pytest.mark.parametrize("script", [s for s in ALL_SCRIPTS if not s.endswith(("paper_row.sh", "zeroshot_all.sh"))])
def test_wrong_argument_count_prints_usage(script, tmp_path):
    proc = run_script(script, cwd=tmp_path)
    assert proc.returncode == 2
    assert "expected" in proc.stderr and "Usage: bash scripts/" in proc.stderr and "Example: bash" in proc.stderr
    assert not (tmp_path / "output").exists()


@pytest.mark.parametrize(
    "script,args,message",
    [
        ("blackvip/tl_bench.sh", ["svhn", 5000, "0.9x", 0.2, 0.005, 1.0], "MOMS must be a number"),
        ("blackvip/tl_bench.sh", ["svhn", "5k", 0.9, 0.2, 0.005, 1.0], "EPOCH must be a positive integer"),
        ("blackvip/tl_bench.sh", ["mnist", 5000, 0.9, 0.2, 0.005, 1.0], "unknown dataset 'mnist'"),
        ("vpour/tl_bench.sh", ["../svhn", 5000, 0.9, 10, 0.01], "unknown dataset"),
        ("bar/tl_bench.sh", ["svhn", 5000, "five", 0.1], "INIT_LR must be a number"),
        ("vpwb/tl_bench.sh", ["svhn", 0, 40], "EPOCH must be a positive integer"),
        ("blackvip/synthetic_lm.sh", [2.5, 0.9, 0.5, 0.01, 0.005], "FSIZE must be a positive integer"),
        ("blackvip/ablation_arch_rn.sh", ["rn18", 0.5, 0.9, 0.2, 0.01, 0.3], "CFG must be rn50"),
        ("blackvip/paper_row.sh", ["svhn", "mnist"], "unknown name 'mnist'"),
        ("vpwb/paper_row.sh", ["ablation"], "unknown name 'ablation'"),
        ("zsclip/zeroshot_all.sh", ["svhn", "mnist"], "unknown dataset 'mnist'"),
    ],
)
def test_bad_arguments_print_usage_before_running(script, args, message, tmp_path):
    proc = run_script(script, *args, cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr and "Usage:" in proc.stderr
    assert "Run: " not in proc.stdout and not (tmp_path / "output").exists()


@pytest.mark.parametrize(
    "env,message",
    [
        ({"SEEDS": "1 x"}, "SEEDS must hold non-negative integers"),
        ({"SHOTS": "-1"}, "SHOTS must be a positive integer"),
        ({"EXTRA": "OPTIM.LR"}, "EXTRA must hold KEY VALUE pairs"),
        ({"EPOCHS": "ten"}, "EPOCHS must be a positive integer"),
        ({"DRY_RUN": "yes"}, "DRY_RUN must be 0 or 1"),
    ],
)
def test_bad_environment_prints_usage(env, message, tmp_path):
    proc = run_script("vpwb/tl_bench.sh", "svhn", 1000, 40, cwd=tmp_path, **env)
    assert proc.returncode == 2 and message in proc.stderr and "Usage:" in proc.stderr


def test_help_prints_usage_and_succeeds(tmp_path):
    proc = run_script("blackvip/tl_bench.sh", "--help", cwd=tmp_path)
    assert proc.returncode == 0 and "Usage: bash scripts/blackvip/tl_bench.sh DATASET EPOCH" in proc.stdout


def test_scripts_never_set_the_gpu():
    for script in [*SCRIPTS.glob("*/*.sh"), SCRIPTS / "common.sh"]:
        if script.name != "quickstart.sh":
            assert "CUDA_VISIBLE_DEVICES" not in script.read_text(), script


def test_prompt_designs_runs_each_vp_design_at_each_size_in_its_own_folder(tmp_path):
    cmds = dry("vpwb/prompt_designs.sh", "eurosat", 2, 40, 10, 30, tmp_path=tmp_path, EXTRA="OPTIM.WARMUP_EPOCH 1")
    designs = [(opts(c)["TRAINER.VPWB.METHOD"], opts(c)["TRAINER.VPWB.PROMPT_SIZE"]) for c in cmds]
    assert designs == [(d, s) for d in ("padding", "fixed_patch", "random_patch") for s in ("10", "30")]
    assert all(opts(c)["OPTIM.WARMUP_EPOCH"] == "1" and opts(c)["OPTIM.LR"] == "40" for c in cmds)
    folders = [output_dir(c) for c in cmds]
    assert len(set(folders)) == 6 and all(
        re.search(r"/eurosat/VPWB/vit_b16/shot16_ep2/lr40" + SUFFIX, f) for f in folders
    )


@pytest.mark.parametrize(
    "args,message",
    [
        ([], "expected DATASET EPOCH LR"),
        (["svhn", 10, 40, "3x"], "SIZE must be a positive integer"),
        (["svhn", 10, 40, 30, 225], "SIZE <= 224"),
    ],
)
def test_prompt_designs_checks_its_sizes_before_running(args, message, tmp_path):
    proc = run_script("vpwb/prompt_designs.sh", *args, cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr and "Usage:" in proc.stderr
    assert "Run: " not in proc.stdout


def test_prompt_designs_applies_each_designs_own_size_limit(tmp_path):
    cmds = dry("vpwb/prompt_designs.sh", "eurosat", 2, 40, 111, 112, 224, tmp_path=tmp_path)
    designs = [(opts(c)["TRAINER.VPWB.METHOD"], opts(c)["TRAINER.VPWB.PROMPT_SIZE"]) for c in cmds]
    patches = [(d, s) for d in ("fixed_patch", "random_patch") for s in ("111", "112", "224")]
    assert designs == [("padding", "111")] + patches, "padding stops at 111 on 224 px, a patch at 224"
