"""Sweeps on a real SLURM cluster (``LAUNCHER=slurm``): a two-seed BlackVIP sweep submitted as a job array equals the
same sweep run locally (``LAUNCHER=local JOBS=2``) bit for bit, one job is sent SLURM's warning signal (USR1) and the
other a preemption's SIGTERM mid-run, and each is requeued and resumes exactly, finished and queued runs are never submitted again, and the status command lists
each run's state with the logs of failed ones.

The cluster is the one-node SLURM that ``.ci/slurm-up.sh`` starts on this machine (``.ci/run`` does, and sets
``BBVP_REQUIRE_SLURM=1`` so that a missing cluster fails these tests instead of skipping them)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dassl.utils import load_checkpoint
from tests.helpers.dataset_layouts import MINI
from tests.test_scripts import commands, output_dir

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
TINY = (
    "MODEL.BACKBONE.NAME tiny-vit TRAINER.BLACKVIP.PT_BACKBONE tiny-vit DATALOADER.NUM_WORKERS 0 "
    "TRAINER.BLACKVIP.SP_AVG 1 OPTIM.WARMUP_EPOCH 1"
)
EPOCHS = 400  # long enough (about 20 s per run here) to be signalled mid-run
ARGS = ["eurosat", EPOCHS, 0.9, 0.2, 0.005, "1.0"]
SLURM_ENV = {"LAUNCHER": "slurm", "GPUS": "0", "CPUS": "1", "TIME_MIN": "30"}
WAIT_S = 600


def cluster_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20).stdout
    except (subprocess.SubprocessError, OSError):
        return False
    return any(
        state.strip().rstrip("*~#") in ("idle", "mixed", "allocated", "completing") for state in out.splitlines()
    )


@pytest.fixture(scope="module")
def cluster():
    if not cluster_up():
        message = "no SLURM cluster answers sinfo on this machine (start one with: sudo bash .ci/slurm-up.sh)"
        if os.environ.get("BBVP_REQUIRE_SLURM") == "1":
            pytest.fail(message)
        pytest.skip(message)


def script(work: Path, output: str, *args, name="blackvip/tl_bench.sh", **env) -> subprocess.CompletedProcess:
    full = {
        **os.environ,
        "PYTHON": sys.executable,
        "OMP_NUM_THREADS": "1",
        "DATA": "data",
        "OUTPUT": output,
        "SHOTS": "1",
        "SEEDS": "1 2",
        "EXTRA": TINY,
        **env,
    }
    args = args or ARGS
    return subprocess.run(
        ["bash", str(REPO / "scripts" / name), *map(str, args)], cwd=work, env=full, capture_output=True, text=True
    )


def status(work: Path, output: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scripts.sweep_status", str(work / output)], cwd=REPO, capture_output=True, text=True
    )


def queued_jobs() -> dict[str, str]:
    out = subprocess.run(["squeue", "-h", "-r", "-o", "%i %T"], capture_output=True, text=True, check=True).stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


def wait_for(condition, what: str, timeout_s: float = WAIT_S, every_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}; queue: {queued_jobs()}")


def epochs_logged(folder: Path) -> int:
    log = folder / "log.txt"
    return log.read_text().count(" batch [1/") if log.is_file() else 0


def weights(folder: Path) -> dict:
    return load_checkpoint(str(folder / "coordinator" / f"model.pth.tar-{EPOCHS}"))["state_dict"]


@pytest.fixture(scope="module")
def sweeps(cluster, tmp_path_factory):
    """The same two-seed sweep on SLURM (seed 1 preempted mid-run) and locally, two runs at a time."""
    work = tmp_path_factory.mktemp("sweep")
    MINI["EuroSAT"].make(work / "data")

    submitted = script(work, "slurm", **SLURM_ENV)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    runs = [Path(output_dir(c)) for c in commands(submitted.stdout)]
    again = script(work, "slurm", **SLURM_ENV)  # while the first submission is queued or running
    index = [json.loads(line) for line in (work / "slurm" / ".jobs" / "index.jsonl").read_text().splitlines()]
    job = {Path(e["run"]): e["job_id"] for e in index}

    # Mid-run, seed 1's job gets SLURM's warning signal (USR1, as before a time limit) and seed 2's the SIGTERM a
    # preemption sends; both must checkpoint, requeue and resume exactly.
    wait_for(lambda: epochs_logged(runs[0]) >= 40, "seed 1 to train 40 epochs")
    preempted_at = epochs_logged(runs[0])
    subprocess.run(["scancel", "--signal=USR1", job[runs[0]]], check=True)
    wait_for(lambda: epochs_logged(runs[1]) >= 40, "seed 2 to train 40 epochs")
    subprocess.run(["scancel", "--signal=TERM", job[runs[1]]], check=True)

    local = script(work, "local", JOBS="2")
    assert local.returncode == 0, local.stdout + local.stderr
    wait_for(lambda: all((r / "results.json").is_file() for r in runs), "both SLURM runs to finish")
    wait_for(lambda: not (set(queued_jobs()) & set(job.values())), "the jobs to leave the queue")
    return {
        "work": work,
        "runs": runs,
        "local": [work / "local" / r.relative_to(work / "slurm") for r in runs],
        "submitted": submitted,
        "again": again,
        "job": job,
        "preempted_at": preempted_at,
        "local_proc": local,
    }


def test_a_slurm_sweep_is_one_job_array_and_equals_the_local_sweep_bit_for_bit(sweeps):
    assert "Submitted:" in sweeps["submitted"].stdout and len(sweeps["runs"]) == 2
    ids = [sweeps["job"][r] for r in sweeps["runs"]]
    assert ids[0].split("_")[0] == ids[1].split("_")[0] and ids[0] != ids[1]  # one array, one task per seed
    for remote, local in zip(sweeps["runs"], sweeps["local"]):
        a = json.loads((remote / "results.json").read_text())
        b = json.loads((local / "results.json").read_text())
        assert a["accuracy"] == b["accuracy"] and a["queries"] == b["queries"] and a["fingerprint"] == b["fingerprint"]
        wa, wb = weights(remote), weights(local)
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    tables = subprocess.run(
        [sys.executable, "scripts/make_tables.py", str(sweeps["work"] / "slurm"), "--strict"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert tables.returncode == 0 and "| BlackVIP (tiny-vit) [tiny-vit] |" in tables.stdout, (
        tables.stdout + tables.stderr
    )
    assert "(2) |" in tables.stdout.split("BlackVIP (tiny-vit)")[1].splitlines()[0]


def test_a_preempted_job_checkpoints_requeues_itself_and_resumes_exactly(sweeps):
    folder = sweeps["runs"][0]
    log = (folder / "log.txt").read_text()
    assert "Received SIGUSR1: checkpointing after this step, then stopping" in log
    assert "===== attempt 2: resumed" in log
    assert sweeps["preempted_at"] < EPOCHS
    job_dir = sweeps["work"] / "slurm" / ".jobs" / "slurm" / sweeps["job"][folder]
    job_out = "".join(p.read_text() for p in job_dir.glob("*_log.*"))
    assert "this job is preempted" in job_out and f"Requeued job {sweeps['job'][folder]}" in job_out


def test_a_job_stopped_by_sigterm_as_in_a_preemption_requeues_itself_and_resumes_exactly(sweeps):
    folder = sweeps["runs"][1]
    log = (folder / "log.txt").read_text()
    assert "Received SIGTERM: checkpointing after this step, then stopping" in log
    assert "===== attempt 2: resumed" in log
    job_dir = sweeps["work"] / "slurm" / ".jobs" / "slurm" / sweeps["job"][folder]
    job_out = "".join(p.read_text() for p in job_dir.glob("*_log.*"))
    assert f"Stopped by SIGTERM; requeue of job {sweeps['job'][folder]}: done" in job_out


def test_finished_and_queued_runs_are_never_submitted_again(sweeps):
    again = sweeps["again"].stdout
    assert again.count("is already queued or running as job") == 2 and "Submitted:" not in again
    after = script(sweeps["work"], "slurm", **SLURM_ENV)
    assert after.returncode == 0 and after.stdout.count("Skip: finished run") == 2 and "Submitted:" not in after.stdout


def test_local_jobs_run_side_by_side_with_their_output_in_the_sweep(sweeps):
    out = sweeps["local_proc"].stdout
    assert out.count("Started: ") == 2 and out.count("Finished: ") == 2
    logs = list((sweeps["work"] / "local" / ".jobs" / "local").glob("*.log"))
    assert len(logs) == 2 and all("Elapsed:" in p.read_text() for p in logs)


def test_the_status_command_lists_each_run_and_the_logs_of_failed_ones(sweeps):
    work = sweeps["work"]
    done = status(work, "slurm")
    assert done.returncode == 0 and "2 finished" in done.stdout
    # a run that fails on the cluster: its data folder does not exist
    failing = script(work, "failing", DATA="missing", SEEDS="1", **SLURM_ENV)
    assert failing.returncode == 0, failing.stdout + failing.stderr
    [run] = [Path(output_dir(c)) for c in commands(failing.stdout)]
    wait_for(lambda: "failed" in status(work, "failing").stdout, "the failing job to end")
    listed = status(work, "failing")
    assert listed.returncode == 1 and "1 failed" in listed.stdout
    assert "_log.err" in listed.stdout  # the job's log, where train.py's error is
    job = json.loads((work / "failing" / ".jobs" / "index.jsonl").read_text().splitlines()[-1])
    assert job["run"] == str(run) and "missing" in Path(job["err"]).read_text()
