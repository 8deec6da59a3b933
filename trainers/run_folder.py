"""A run folder's identity and ownership: what determines its result, who is writing to it, and its attempts.

``OUTPUT_DIR/run.json`` records the run's fingerprint (every config value that can change its result, and the
toolkit version) and one entry per attempt (start, process, host). A command whose fingerprint differs from the
folder's stops before touching anything and names the differing keys; ``--start-over`` moves the old run aside
into ``OUTPUT_DIR/.replaced-<time>/`` instead of deleting it. ``OUTPUT_DIR/.lock`` (an advisory ``flock``, freed
by the kernel when the process dies, however it dies) keeps two live processes out of one folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import os.path as osp
import shutil
import socket
import time
from collections.abc import Iterator, Mapping
from typing import Any

from dassl.config import CfgNode
from dassl.utils import mkdir_if_missing, write_json
from trainers import __version__
from trainers.config import result_neutral_keys
from trainers.results import EVAL_RESULTS_FILE, LOCK_FILE, RESULTS_FILE, RUN_RECORD

__all__ = ["EVAL_RESULTS_FILE", "LOCK_FILE", "RESULTS_FILE", "RUN_RECORD", "RunFolder", "RunFolderError"]

VERSION_KEY = "toolkit_version"


class RunFolderError(RuntimeError):
    """The output folder belongs to another run or is in use; the message says how to proceed."""


def flatten(node: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as ``{"A.B.C": value}`` with JSON-normalised values (tuples become lists)."""
    flat: dict[str, Any] = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = json.loads(json.dumps(value))
    return flat


def fingerprint(cfg: CfgNode) -> dict[str, Any]:
    """Every config value that can change a run's result, by dotted key, plus the toolkit version.

    Keys declared with ``result=False`` (paths, print and checkpoint frequencies, memory limits) are left out,
    so a resumed run may change them.
    """
    neutral = result_neutral_keys()
    values = {k: v for k, v in flatten(cfg).items() if k not in neutral}
    values[VERSION_KEY] = __version__
    return values


def digest(values: Mapping[str, Any]) -> str:
    """A short, stable digest of a fingerprint (stored in checkpoints and results.json)."""
    text = json.dumps(dict(values), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def differences(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``KEY: recorded -> current`` for every key whose value differs (or exists on one side only)."""
    missing = "(absent)"
    lines = []
    for key in sorted(set(recorded) | set(current)):
        old, new = recorded.get(key, missing), current.get(key, missing)
        if old != new:
            lines.append(f"{key}: {old!r} -> {new!r}")
    return lines


class RunFolder:
    """The output folder of one run."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock_fd: int | None = None

    def file(self, name: str) -> str:
        return osp.join(self.path, name)

    def _read_json(self, name: str) -> Any:
        path = self.file(name)
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError) as e:
            raise RunFolderError(
                f"{path} is unreadable ({e}). Restore it, or run with --start-over to move this folder's run aside "
                f"and start again."
            ) from None

    # --- what the folder holds

    def checkpoint_dirs(self) -> list[str]:
        """Subfolders holding a Dassl checkpoint pointer (``<model>/checkpoint``)."""
        if not osp.isdir(self.path):
            return []
        return sorted(d for d in os.listdir(self.path) if osp.isfile(osp.join(self.path, d, "checkpoint")))

    def holds_training(self) -> bool:
        """True if a training run wrote here (checkpoints, a training record, or a training results.json)."""
        if self.checkpoint_dirs():
            return True
        if osp.isfile(self.file(RUN_RECORD)):
            return self.record().get("mode") == "train"
        if osp.isfile(self.file(RESULTS_FILE)):
            data = self._read_json(RESULTS_FILE)
            return isinstance(data, dict) and not data.get("eval_only", False)
        return False

    def record(self) -> dict:
        """The folder's ``run.json`` (empty when there is none)."""
        if not osp.isfile(self.file(RUN_RECORD)):
            return {}
        data = self._read_json(RUN_RECORD)
        if not isinstance(data, dict) or not isinstance(data.get("fingerprint"), dict):
            raise RunFolderError(
                f"{self.file(RUN_RECORD)} is not a run record (no fingerprint). Restore it, or run with --start-over."
            )
        return data

    def checkpoint_digest(self) -> str:
        """The fingerprint digest in the newest readable checkpoint ("" when none records one)."""
        from dassl.utils import CheckpointError, checkpoint_candidates, load_checkpoint

        for name in self.checkpoint_dirs():
            for path in checkpoint_candidates(self.file(name)):
                try:
                    state = load_checkpoint(path).get("trainer_state") or {}
                except (CheckpointError, FileNotFoundError):
                    continue
                return str(state.get("fingerprint") or "")
        return ""

    def recorded_fingerprint(self) -> dict | None:
        """The fingerprint of the run already here: from run.json, else (folders written before run.json existed)
        from results.json's config, else None."""
        record = self.record()
        if record:
            return record["fingerprint"]
        if osp.isfile(self.file(RESULTS_FILE)):
            data = self._read_json(RESULTS_FILE)
            if isinstance(data, dict) and isinstance(data.get("config"), dict):
                neutral = result_neutral_keys()
                return {k: v for k, v in flatten(data["config"]).items() if k not in neutral}
        return None

    # --- identity

    def holds_state(self) -> bool:
        """True if the folder holds something a run resumes from or reports (checkpoints or a results file)."""
        return bool(self.checkpoint_dirs()) or any(
            osp.isfile(self.file(name)) for name in (RESULTS_FILE, EVAL_RESULTS_FILE)
        )

    def check_identity(self, current: Mapping[str, Any], flag: str = "--start-over") -> list[str]:
        """The keys in which the folder's run differs from ``current`` (empty: same run, or no run yet).

        RunFolderError naming them when that run left checkpoints or results; when it left neither (it stopped
        before its first checkpoint), nothing can be mixed up and the differences are returned for the caller
        to move its log aside.
        """
        recorded = self.recorded_fingerprint()
        if recorded is None:
            stored = self.checkpoint_digest()
            if stored and stored != digest(current):
                raise RunFolderError(
                    f"{self.path} holds checkpoints of another run (their fingerprint {stored} is not this command's "
                    f"{digest(current)}; run.json, which would name the differing keys, is missing). Nothing was "
                    f"changed. Choose another --output-dir, or pass {flag} to move that run aside."
                )
            if not stored and self.checkpoint_dirs():
                print(
                    f"Warning: {self.path} holds checkpoints without a run record (written by an older version); "
                    f"their configuration cannot be checked against this command."
                )
            return []
        if VERSION_KEY not in recorded:
            current = {k: v for k, v in current.items() if k != VERSION_KEY}
        diff = differences(recorded, current)
        if diff and self.holds_state():
            shown = "\n  ".join(diff[:20]) + (f"\n  ... and {len(diff) - 20} more" if len(diff) > 20 else "")
            raise RunFolderError(
                f"{self.path} holds another run: this command differs in\n  {shown}\n"
                f"Nothing was changed. Choose another --output-dir for this run, use the original command to resume "
                f"or re-evaluate that run, or pass {flag} to move that run into {self.path}/.replaced-<time>/ and "
                f"start this one from scratch."
            )
        return diff

    def begin_attempt(self, current: Mapping[str, Any], mode: str) -> int:
        """Record the fingerprint (first attempt) and this attempt; returns the attempt number (1 = first)."""
        record = self.record() or {"fingerprint": dict(current), "mode": mode, "attempts": []}
        record["fingerprint"] = dict(current)
        attempts = record.setdefault("attempts", [])
        attempts.append(
            {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "pid": os.getpid(), "host": socket.gethostname()}
        )
        write_json(record, self.file(RUN_RECORD))
        return len(attempts)

    def start_over(self) -> str | None:
        """Move everything in the folder (but the lock) into ``.replaced-<time>/``; returns that folder or None."""
        entries = [e for e in os.listdir(self.path) if e != LOCK_FILE and not e.startswith(".replaced-")]
        if not entries:
            return None
        dest = self.file(time.strftime(".replaced-%Y%m%d-%H%M%S"))
        while osp.exists(dest):
            dest += "_"
        os.makedirs(dest)
        for entry in entries:
            shutil.move(self.file(entry), osp.join(dest, entry))
        return dest

    # --- ownership

    @contextlib.contextmanager
    def locked(self) -> Iterator[RunFolder]:
        """Hold the folder's lock for the block; RunFolderError names the holder when another process has it."""
        mkdir_if_missing(self.path)
        path = self.file(LOCK_FILE)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunFolderError(
                f"{self.path} is in use by a live run ({holder}). Two processes in one folder would mix their "
                f"checkpoints: wait for that run to end, stop it, or choose another --output-dir."
            ) from None
        os.ftruncate(fd, 0)
        os.write(
            fd, f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode()
        )
        self._lock_fd = fd
        try:
            yield self
        finally:
            self._lock_fd = None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
