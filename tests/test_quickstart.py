"""The quickstart's real code path, shortened: real LeNet-5 black box, real MNIST digits, every method."""

import json
import subprocess
import sys

import pytest
from PIL import Image

from trainers.methods.prompt_grid import GRID_IMAGES, GRID_PAD, grid_size

SCRIPT = "scripts/quickstart.sh"


@pytest.mark.real
@pytest.mark.slow
def test_quickstart_runs_every_method_and_prints_the_bill(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    cmd = ["bash", SCRIPT, "--budget", "0.02", "--seeds", "1", "--data", str(data), "--output", str(out), "--efficient"]
    done = subprocess.run(cmd, capture_output=True, text=True, env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout + done.stderr
    summary = (out / "summary.txt").read_text()
    assert summary in done.stdout
    for title in ("Zero-shot (no prompt)", "BAR", "VP w/ SPSA-GC", "BlackVIP", "Est. cost USD / run (at 1.20 per 1k)"):
        assert title in summary
    results = [json.loads(p.read_text()) for p in out.rglob("results.json")]
    assert sorted(r["trainer"] for r in results) == ["BAR", "BLACKVIP", "BLACKVIP", "VPOUR", "ZeroshotCLIP"]
    steps = 2 * 5  # budget 0.02 of 120 epochs, 5 steps per epoch
    expected = {"ZeroshotCLIP": 0, "BAR": steps * 6 * 32, "VPOUR": steps * 10 * 32, "BLACKVIP": steps * 10 * 32}
    # the efficient preset: half the steps (1 epoch) at 2 queries per image, a tenth of BlackVIP's queries
    expected["prompt-spsa-gc"] = 5 * 2 * 32
    for r in results:
        opt = r["config"]["TRAINER"]["BLACKVIP"]["OPT_TYPE"] if r["trainer"] == "BLACKVIP" else ""
        assert r["queries"].get("train", {}).get("images", 0) == expected.get(opt, expected[r["trainer"]])
        assert r["queries"]["test"]["images"] == 1000 and 0 <= r["accuracy"] <= 100
    zs = next(r for r in results if r["trainer"] == "ZeroshotCLIP")
    assert 40 < zs["accuracy"] < 90  # the real classifier reads coloured backgrounds badly, but far above chance
    blackvip = next(r for r in results if r["trainer"] == "BLACKVIP")
    assert f"{blackvip['accuracy'] - zs['accuracy']:+.1f}" in summary
    efficient_row = next(line for line in summary.splitlines() if line.startswith("BlackVIP, efficient preset"))
    assert efficient_row.split()[-1] == "10%" and "Queries vs BlackVIP" in summary
    assert (out / "accuracy_vs_queries.png").is_file()
    for trainer in ("BAR", "VPOUR", "BLACKVIP", "BLACKVIP_blackvip_efficient"):  # zero-shot has no prompt to show
        with Image.open(out / "prompt_grids" / f"{trainer}.png") as grid:
            side = grid.size[0] // 3 - GRID_PAD  # three square tiles a row
            assert grid.size == grid_size(GRID_IMAGES, side)
    assert not (out / "prompt_grids" / "ZeroshotCLIP.png").exists()
    assert "accuracy_vs_queries.png" in done.stdout

    again = subprocess.run(cmd, capture_output=True, text=True, env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"})
    assert again.returncode == 0 and "already there" in again.stdout  # finished runs and data are reused


def test_quickstart_rejects_bad_options():
    done = subprocess.run([sys.executable, "scripts/quickstart.py", "--budget", "0"], capture_output=True, text=True)
    assert done.returncode == 2 and "--budget must be > 0" in done.stderr


@pytest.mark.real
@pytest.mark.slow
def test_quickstart_with_a_query_budget_stops_runs_before_it_and_says_so(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    cmd = ["bash", SCRIPT, "--budget", "0.02", "--seeds", "1", "--data", str(data), "--output", str(out)]
    cmd += ["--query-budget", "3000"]
    done = subprocess.run(cmd, capture_output=True, text=True, env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout + done.stderr
    results = {json.loads(p.read_text())["trainer"]: json.loads(p.read_text()) for p in out.rglob("results.json")}
    # 1,000 test images are reserved; 2,000 remain for training: 6 of the 10 steps of 320 images, all 10 of BAR's 192
    for trainer in ("BLACKVIP", "VPOUR"):
        r = results[trainer]
        assert r["stopped_by"] == "budget" and r["steps"] == 6 and r["queries"]["total"]["images"] == 6 * 320 + 1000
    assert results["BAR"]["stopped_by"] is None and results["BAR"]["steps"] == 10
    assert "2 of 4 runs stopped before their query budget of 3,000 images" in done.stdout
    assert "BlackVIP seed 1" in done.stdout and "stopped by its query budget" in done.stdout


@pytest.mark.real
@pytest.mark.slow
def test_quickstart_against_the_classifier_served_over_http(tmp_path):
    pytest.importorskip("mlserver", reason="serving needs requirements-serve.txt")
    from tests.helpers.model_server import serving

    serve = ["--dataset-config-file", "configs/quickstart/task.yaml", "--classes", ",".join(map(str, range(10)))]
    with serving([*serve, "--model-name", "lenet"], tmp_path / "server.log") as url:
        data, out = tmp_path / "data", tmp_path / "out"
        cmd = ["bash", SCRIPT, "--budget", "0.02", "--seeds", "1", "--data", str(data), "--output", str(out)]
        env = {"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"}
        done = subprocess.run([*cmd, "--remote", url], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"(served at {url}, reached over HTTP)" in done.stdout
    results = [json.loads(p.read_text()) for p in (out / "remote").rglob("results.json")]
    assert sorted(r["trainer"] for r in results) == ["BAR", "BLACKVIP", "VPOUR", "ZeroshotCLIP"]
    steps = 2 * 5
    expected = {"ZeroshotCLIP": 0, "BAR": steps * 6 * 32, "VPOUR": steps * 10 * 32, "BLACKVIP": steps * 10 * 32}
    for r in results:
        assert r["config"]["TARGET"]["NAME"] == "remote" and r["config"]["TARGET"]["REMOTE"]["URL"] == url
        assert r["queries"].get("train", {}).get("images", 0) == expected[r["trainer"]]
        assert r["queries"]["test"]["images"] == 1000 and r["retries"] == 0
    zs = next(r for r in results if r["trainer"] == "ZeroshotCLIP")
    assert 40 < zs["accuracy"] < 90  # the same real classifier as in-process
