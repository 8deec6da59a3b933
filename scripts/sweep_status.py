"""List the runs of a sweep and where each stands: finished, queued, running, stopped (resumable), failed.

    python -m scripts.sweep_status [OUTPUT] [--failed]

A run folder is one that holds ``run.json`` or ``results.json``, or that a launch recorded in
``OUTPUT/.jobs/index.jsonl``. Its state comes from its files, SLURM's queue (``squeue``) for runs submitted with
``LAUNCHER=slurm``, and the process for runs started with ``LAUNCHER=local JOBS=N``. A failed run is shown with
the logs to read. Exits 1 when any run failed, else 0.
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import re
import socket
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run by path: import scripts.* from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from tabulate import tabulate  # noqa: E402

from dassl.utils.tools import pid_alive  # noqa: E402
from scripts.launch import has_checkpoint  # noqa: E402
from scripts.runners import JOBS_DIR, read_index, slurm_queue  # noqa: E402
from trainers.results import LOCK_FILE, RESULTS_FILE, RUN_RECORD  # noqa: E402

QUEUED = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "SUSPENDED", "RESIZING"}


def run_folders(output: str) -> list[str]:
    """Every run folder under ``output`` (absolute paths, sorted), recorded launches included."""
    found = set(read_index(output))
    for root, dirs, files in os.walk(output):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if RUN_RECORD in files or RESULTS_FILE in files:
            found.add(osp.abspath(root))
    return sorted(found)


def held_by_live_process(folder: str) -> bool:
    """Whether the folder's lock names a process on this machine that is alive. Read, never taken: taking the lock,
    even for a moment, could make a run that is starting refuse its folder."""
    path = osp.join(folder, LOCK_FILE)
    try:
        holder = Path(path).read_text()
    except OSError:
        return False
    match = re.match(r"pid (\d+) on (\S+),", holder)
    return bool(match) and match.group(2) == socket.gethostname() and pid_alive(int(match.group(1)))


def status(folder: str, entry: dict | None, queue: dict[str, str] | None) -> tuple[str, str, list[str]]:
    """(state, job, logs to read) of one run folder."""
    train_log = osp.join(folder, "log.txt")
    if osp.isfile(osp.join(folder, RESULTS_FILE)):
        return "finished", "", []
    job = ""
    if entry and entry.get("launcher") == "slurm":
        job = f"slurm {entry['job_id']}"
        if queue is None:
            return "unknown (squeue did not answer)", job, []
        state = queue.get(str(entry["job_id"]))
        if state:
            return ("queued" if state in QUEUED else "running"), f"{job} ({state.lower()})", []
        logs = [p for p in (entry.get("err"), entry.get("log"), train_log) if p and osp.isfile(p)]
        return ("stopped (resumable)" if has_checkpoint(folder) else "failed"), job, logs
    if entry and entry.get("launcher") == "local":
        job = f"local pid {entry['pid']}"
        if pid_alive(int(entry["pid"])):  # starting (importing) or training
            return "running", job, []
        logs = [p for p in (entry.get("log"), train_log) if p and osp.isfile(p)]
        return ("stopped (resumable)" if has_checkpoint(folder) else "failed"), job, logs
    if held_by_live_process(folder):
        return "running", job, []
    if has_checkpoint(folder):
        return "stopped (resumable)", job, [train_log] if osp.isfile(train_log) else []
    return "not started", job, []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", default="output", help="the sweep's OUTPUT folder (default: ./output)")
    parser.add_argument("--failed", action="store_true", help="list only the runs that failed")
    args = parser.parse_args(argv)
    output = osp.abspath(args.output)
    if not osp.isdir(output):
        print(f"Error: {args.output} is not a folder; name the OUTPUT of the sweep", file=sys.stderr)
        return 2
    index = read_index(output)
    queue = slurm_queue() if any(e.get("launcher") == "slurm" for e in index.values()) else {}
    if queue is None:
        print("Warning: squeue did not answer; the state of SLURM runs without results is unknown", file=sys.stderr)
    rows, counts = [], {}
    for folder in run_folders(output):
        state, job, logs = status(folder, index.get(folder), queue)
        counts[state] = counts.get(state, 0) + 1
        if args.failed and state != "failed":
            continue
        rows.append([osp.relpath(folder, output), state, job, "\n".join(logs)])
    if rows:
        print(tabulate(rows, headers=["run", "state", "job", "logs"], tablefmt="simple"))
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no runs"
    print(f"{output}: {summary} (launch records in {osp.join(output, JOBS_DIR)})")
    return 1 if counts.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
