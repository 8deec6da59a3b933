"""Where the reproduction scripts' train.py runs go: this shell one after another, N at a time, or SLURM jobs.

``LAUNCHER=local`` (default) runs each command here; with ``JOBS=N`` up to N at once, each on its own GPU when
GPUs exist (``CUDA_VISIBLE_DEVICES`` set per slot), their output in ``OUTPUT/.jobs/local/``. ``LAUNCHER=slurm``
submits the runs (seeds) of each setting as a SLURM job array through submitit; each job runs train.py as a child
and, on the preemption or time-limit signal SLURM sends (SIGUSR1, ``--signal USR1@SIGNAL_DELAY_S``), lets it
checkpoint after its current step, then requeues itself: the requeued job runs the same command, which resumes
exactly. Every submission is recorded in ``OUTPUT/.jobs/index.jsonl`` (run folder, job id, log), which the status
command (``python -m scripts.sweep_status OUTPUT``) and the next launch read: a queued or running run is not
submitted twice, a finished one (results.json) never.
"""

from __future__ import annotations

import json
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from scripts.recipes import REPO_ROOT

JOBS_DIR = ".jobs"
INDEX_FILE = "index.jsonl"
# Seconds between SLURM's warning signal and the end of a job's time: enough for a step to finish and a checkpoint.
SIGNAL_DELAY_S = 120
# The warning signal: train.py checkpoints after its current step on SIGUSR1 (and on SIGTERM).
PREEMPT_SIGNAL = "USR1"
STOPPED_BY_SIGNAL = {128 + signal.SIGUSR1, 128 + signal.SIGTERM}
# submitit reads its preemption signal when it is first imported, in the launcher and in each job (which inherits
# this environment): set before any import of it.
os.environ["SUBMITIT_PREEMPT_SIGNAL"] = PREEMPT_SIGNAL

SLURM_KEYS = {
    # key in LAUNCHER_CONFIG: (environment variable, type, default, what it is)
    "partition": ("PARTITION", str, "", "partition (empty: the cluster's default)"),
    "account": ("ACCOUNT", str, "", "account to charge (empty: your default)"),
    "qos": ("QOS", str, "", "quality of service (empty: the default)"),
    "gpus": ("GPUS", int, 1, "GPUs per run (0 or 1)"),
    "cpus": ("CPUS", int, 4, "CPU cores per run"),
    "mem_gb": ("MEM_GB", int, 0, "memory per run in GB (0: the partition's default)"),
    "time_min": ("TIME_MIN", int, 24 * 60, "time limit per job in minutes (a preempted or timed-out run requeues)"),
    "array_parallelism": ("ARRAY_PARALLELISM", int, 64, "most runs of one job array running at once"),
}


class LauncherError(ValueError):
    """A bad launcher setting (LAUNCHER, JOBS, LAUNCHER_CONFIG or a SLURM variable)."""


def say(*lines: str, file: IO[str] | None = None) -> None:
    print(*lines, sep="\n", file=file or sys.stdout, flush=True)


# ---------------------------------------------------------------- the submission record


def index_path(output: str) -> str:
    return osp.join(output, JOBS_DIR, INDEX_FILE)


def record_submission(output: str, entry: dict) -> None:
    """Append one submission to ``OUTPUT/.jobs/index.jsonl`` (one whole line, flushed)."""
    path = index_path(output)
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def read_index(output: str) -> dict[str, dict]:
    """The latest submission of each run folder (by its absolute path)."""
    latest: dict[str, dict] = {}
    path = index_path(output)
    if osp.isfile(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line:
                    entry = json.loads(line)
                    latest[osp.abspath(entry["run"])] = entry
    return latest


def slurm_queue() -> dict[str, str] | None:
    """Job id (``123`` or ``123_4`` for an array task) -> state, for this user's jobs in the queue; None when
    ``squeue`` is missing or does not answer (then nobody can tell a queued run from a finished one)."""
    if shutil.which("squeue") is None:
        return None
    try:
        out = subprocess.run(
            ["squeue", "-h", "--me", "-r", "-o", "%i %T"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return None
    return dict(line.split(maxsplit=1) for line in out.splitlines() if line.strip())


# ---------------------------------------------------------------- runners


@dataclass
class Run:
    """One train.py run: its folder and command (run from the repository root)."""

    folder: str
    command: list[str]


class Runner:
    """Runs (or submits) train.py commands; ``finish`` waits for what is still running and returns the exit status."""

    name = "local"

    def already_queued(self, folder: str) -> str:
        """Why ``folder`` must not be launched now because a job of an earlier launch holds it ("" when free)."""
        return ""

    def run(self, run: Run, stdin: int | None = None) -> int:
        """Run or queue ``run``; a non-zero exit status stops the script (SequentialRunner only)."""
        raise NotImplementedError

    def flush(self) -> int:
        """The runs of one setting have all been given (SlurmRunner submits them as one job array)."""
        return 0

    def finish(self) -> int:
        return 0


class SequentialRunner(Runner):
    """One run after the other in this shell, output to the terminal; the first failure stops the script."""

    def run(self, run: Run, stdin: int | None = None) -> int:
        code = subprocess.run(run.command, cwd=REPO_ROOT, stdin=stdin).returncode
        return 128 - code if code < 0 else code


@dataclass
class ParallelRunner(Runner):
    """Up to ``jobs`` runs at once, each with its own GPU when GPUs exist; output in ``OUTPUT/.jobs/local/``.
    A failing run does not stop the others; ``finish`` reports each failure with its log and returns 1."""

    jobs: int
    output: str
    gpus: list[str] = field(default_factory=list)
    _running: list[tuple[subprocess.Popen, Run, str, str | None]] = field(default_factory=list)
    _failed: list[str] = field(default_factory=list)

    def run(self, run: Run, stdin: int | None = None) -> int:
        # at most `jobs` runs, and with GPUs at most one run per GPU: a run without a GPU of its own would share one
        slots = min(self.jobs, len(self.gpus)) if self.gpus else self.jobs
        while len(self._running) >= slots:
            self._reap(block=True)
        busy = {gpu for *_, gpu in self._running}
        gpu = next((g for g in self.gpus if g not in busy), None)
        env = dict(os.environ)
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        log_dir = osp.join(self.output, JOBS_DIR, "local")
        os.makedirs(log_dir, exist_ok=True)
        name = osp.relpath(run.folder, self.output).replace(os.sep, "__")
        log = osp.join(log_dir, f"{name}.log")
        with open(log, "a") as out:  # a resumed run's output follows the earlier attempt's
            proc = subprocess.Popen(
                run.command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
            )
        where = f" on GPU {gpu}" if gpu is not None else ""
        say(f"Started{where}: {run.folder} (pid {proc.pid}, output in {log})")
        record_submission(
            self.output,
            {"run": run.folder, "launcher": "local", "pid": proc.pid, "log": log, "time": time.time()},
        )
        self._running.append((proc, run, log, gpu))
        return 0

    def _reap(self, block: bool) -> None:
        while True:
            for item in list(self._running):
                proc, run, log, _ = item
                code = proc.poll()
                if code is None:
                    continue
                self._running.remove(item)
                if code:
                    self._failed.append(f"  {run.folder}: exit status {code}; output in {log}")
                    say(f"Failed: {run.folder} (exit status {code}; output in {log})")
                else:
                    say(f"Finished: {run.folder}")
                return
            if not block or not self._running:
                return
            time.sleep(0.5)

    def finish(self) -> int:
        try:
            while self._running:
                self._reap(block=True)
        except KeyboardInterrupt:
            self.stop()
            raise
        if self._failed:
            say("Failed runs:", *self._failed, file=sys.stderr)
            return 1
        return 0

    def stop(self) -> None:
        """SIGTERM to the runs still going (each checkpoints after its step), then wait for them."""
        for proc, run, _, _ in self._running:
            if proc.poll() is None:
                say(f"Stopping: {run.folder} (pid {proc.pid}); the same command resumes it")
                proc.terminate()
        for proc, *_ in self._running:
            proc.wait()
        self._running.clear()


def slurm_settings(environ: dict[str, str]) -> dict[str, Any]:
    """SLURM job settings: ``LAUNCHER_CONFIG`` (a YAML file with the keys of SLURM_KEYS), then the environment
    variables, which win. LauncherError names the bad value."""
    settings: dict[str, Any] = {key: default for key, (_, _, default, _) in SLURM_KEYS.items()}
    config = environ.get("LAUNCHER_CONFIG", "")
    if config:
        if not osp.isfile(config):
            raise LauncherError(f"LAUNCHER_CONFIG names {config}, which does not exist")
        loaded = yaml.safe_load(Path(config).read_text()) or {}
        unknown = sorted(set(loaded) - set(SLURM_KEYS))
        if not isinstance(loaded, dict) or unknown:
            raise LauncherError(f"{config}: unknown keys {unknown}; known: {', '.join(SLURM_KEYS)}")
        settings.update(loaded)
    for key, (var, _, _, _) in SLURM_KEYS.items():
        if environ.get(var):
            settings[key] = environ[var]
    for key, (var, kind, _, _) in SLURM_KEYS.items():
        try:
            settings[key] = kind(settings[key])
        except (TypeError, ValueError):
            raise LauncherError(
                f"{var} (or {key} in LAUNCHER_CONFIG) must be {kind.__name__}, got {settings[key]!r}"
            ) from None
        if kind is int and settings[key] < 0:
            raise LauncherError(f"{var} must not be negative, got {settings[key]}")
    if settings["time_min"] < 1 or settings["cpus"] < 1 or settings["array_parallelism"] < 1:
        raise LauncherError("TIME_MIN, CPUS and ARRAY_PARALLELISM must be at least 1")
    if settings["gpus"] > 1:
        raise LauncherError(
            f"GPUS must be 0 or 1 with LAUNCHER=slurm, got {settings['gpus']}: each job runs one train.py process, "
            "which uses one GPU. To split one run over several GPUs, start it with torchrun (see the README)."
        )
    return settings


class TrainJob:
    """A SLURM job's work: train.py as a child process. On the warning signal submitit calls ``checkpoint``, which
    waits for train.py to checkpoint after its step (it got the same signal) and asks submitit to requeue the same
    command, which resumes where it stopped."""

    def __init__(self, run: Run):
        self.run = run
        self._proc: subprocess.Popen | None = None
        self._ended = threading.Event()

    def __call__(self) -> str:
        # A thread reaps the child, so that the signal handler (main thread) can wait for its end on an Event:
        # waiting on the Popen there would deadlock on the lock the interrupted Popen.wait holds.
        self._proc = proc = subprocess.Popen(self.run.command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL)

        def reap() -> None:
            proc.wait()
            self._ended.set()

        threading.Thread(target=reap, daemon=True).start()
        while not self._ended.wait(timeout=1.0):
            pass
        code = proc.returncode
        if code == 0:
            return self.run.folder
        if code == 128 + signal.SIGTERM and self._requeue():
            # SLURM preempts (or cancels) with SIGTERM; train.py checkpointed, and the requeued job resumes it
            sys.exit(0)
        if code in STOPPED_BY_SIGNAL:
            raise RuntimeError(
                f"train.py stopped on a signal (exit status {code}) with a checkpoint in {self.run.folder}; the job "
                "was not requeued: launch the same script again to resume it"
            )
        raise RuntimeError(f"train.py failed (exit status {code}); its log: {osp.join(self.run.folder, 'log.txt')}")

    @staticmethod
    def _requeue() -> bool:
        """Requeue this job (the array task) after a SIGTERM, unless its user cancelled it (``scancel``): False
        then, and when SLURM refuses."""
        job = os.environ.get("SLURM_ARRAY_JOB_ID")
        job = f"{job}_{os.environ['SLURM_ARRAY_TASK_ID']}" if job else os.environ.get("SLURM_JOB_ID")
        if not job or shutil.which("scontrol") is None:
            return False
        shown = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True).stdout
        if "JobState=CANCELLED" in shown:
            print(f"Job {job} was cancelled: not requeued (launch the script again to resume it)")
            return False
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
        print(f"Stopped by SIGTERM; requeue of job {job}: {done.returncode == 0 and 'done' or done.stderr.strip()}")
        return done.returncode == 0

    def checkpoint(self) -> Any:
        import submitit

        if self._proc is not None and not self._ended.is_set():
            self._proc.send_signal(signal.SIGUSR1)  # in case SLURM signalled this process only
            self._ended.wait()
        return submitit.helpers.DelayedSubmission(TrainJob(self.run))

    def __getstate__(self) -> dict:
        return {"run": self.run}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["run"])  # type: ignore[misc]


@dataclass
class SlurmRunner(Runner):
    """The runs (seeds) of one setting, submitted together as one job array."""

    output: str
    settings: dict[str, Any]
    dry_run: bool = False
    _pending: list[Run] = field(default_factory=list)
    _queue: dict[str, str] | None = None
    name = "slurm"

    def already_queued(self, folder: str) -> str:
        entry = read_index(self.output).get(osp.abspath(folder))
        if not entry or entry.get("launcher") != "slurm":
            return ""
        if self._queue is None:
            self._queue = slurm_queue()
            if self._queue is None:
                raise LauncherError(
                    f"squeue did not answer, so it is unknown whether job {entry['job_id']} ({folder}) is still "
                    "queued or running; submitting it again could run it twice. Try again when SLURM answers."
                )
        state = self._queue.get(str(entry["job_id"]))
        return f"job {entry['job_id']} ({state.lower()})" if state else ""

    def run(self, run: Run, stdin: int | None = None) -> int:
        self._pending.append(run)
        return 0

    def executor(self) -> Any:
        import submitit
        from submitit.slurm.slurm import SlurmJobEnvironment

        if SlurmJobEnvironment.USR_SIG != PREEMPT_SIGNAL:
            raise LauncherError(
                f"submitit was imported with SUBMITIT_PREEMPT_SIGNAL={SlurmJobEnvironment.USR_SIG}, but train.py "
                f"checkpoints on SIG{PREEMPT_SIGNAL}: unset SUBMITIT_PREEMPT_SIGNAL or set it to {PREEMPT_SIGNAL}"
            )

        s = self.settings
        executor = submitit.SlurmExecutor(folder=osp.join(self.output, JOBS_DIR, "slurm", "%j"), max_num_timeout=100)
        params: dict[str, Any] = {
            "job_name": "bbvp",
            "cpus_per_task": s["cpus"],
            "time": s["time_min"],
            "signal_delay_s": SIGNAL_DELAY_S,
            "array_parallelism": s["array_parallelism"],
            # jobs start in the repository (train.py's relative config paths) and may be requeued
            "additional_parameters": {"chdir": str(REPO_ROOT), "requeue": True},
        }
        for key in ("partition", "account", "qos"):
            if s[key]:
                params[key] = s[key]
        if s["gpus"]:
            params["gpus_per_node"] = s["gpus"]
        if s["mem_gb"]:
            params["mem"] = f"{s['mem_gb']}GB"
        executor.update_parameters(**params)
        return executor

    def submit(self) -> int:
        runs, self._pending = self._pending, []
        if not runs:
            return 0
        if self.dry_run:
            say(f"# would submit {len(runs)} run(s) as one SLURM job array")
            return 0
        if shutil.which("sbatch") is None:
            raise LauncherError("LAUNCHER=slurm needs SLURM's sbatch on PATH; run on the cluster's login node")
        executor = self.executor()
        with executor.batch():
            jobs = [executor.submit(TrainJob(run)) for run in runs]
        for run, job in zip(runs, jobs, strict=True):
            log, err = (str(p).replace("%j", str(job.job_id)) for p in (job.paths.stdout, job.paths.stderr))
            entry = {"run": run.folder, "launcher": "slurm", "job_id": str(job.job_id), "log": log, "err": err}
            record_submission(self.output, {**entry, "time": time.time()})
            say(f"Submitted: {run.folder} as job {job.job_id} (output in {log})")
        return 0

    def flush(self) -> int:
        return self.submit()

    def finish(self) -> int:
        return self.submit()


def visible_gpus(environ: dict[str, str]) -> list[str]:
    """GPU ids a local run may be pinned to: CUDA_VISIBLE_DEVICES' entries, else those nvidia-smi lists."""
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in visible.split(",") if g.strip()]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def build_runner(environ: dict[str, str], output: str, dry_run: bool) -> Runner:
    """The runner LAUNCHER and JOBS ask for; LauncherError on a bad value."""
    launcher = environ.get("LAUNCHER") or "local"
    jobs_text = environ.get("JOBS") or "1"
    if not jobs_text.isdigit() or int(jobs_text) < 1:
        raise LauncherError(f"JOBS must be a positive integer, got '{jobs_text}'")
    if launcher == "local":
        jobs = int(jobs_text)
        if jobs == 1 or dry_run:
            return SequentialRunner()
        return ParallelRunner(jobs=jobs, output=output, gpus=visible_gpus(environ))
    if launcher == "slurm":
        return SlurmRunner(output=output, settings=slurm_settings(environ), dry_run=dry_run)
    raise LauncherError(f"LAUNCHER must be local or slurm, got '{launcher}'")


def describe_settings(keys: Sequence[str] = tuple(SLURM_KEYS)) -> str:
    return "\n".join(f"  {SLURM_KEYS[k][0]} ({k}): {SLURM_KEYS[k][3]}; default {SLURM_KEYS[k][2]!r}" for k in keys)
