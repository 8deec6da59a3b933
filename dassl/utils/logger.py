"""Tee stdout to ``OUTPUT_DIR/log.txt`` so every run leaves a parseable log."""

from __future__ import annotations

import os
import os.path as osp
import sys
import time
from typing import TextIO

from .tools import mkdir_if_missing

__all__ = ["Logger", "setup_logger", "close_logger"]


class Logger:
    """Writes everything printed to the console and to a file, line-buffered: every completed line reaches the
    operating system at once, so a process killed by SIGKILL or SIGTERM keeps its log up to its last line."""

    def __init__(self, fpath: str, mode: str = "w") -> None:
        self.console: TextIO = sys.stdout
        mkdir_if_missing(osp.dirname(osp.abspath(fpath)))
        self.fpath = fpath
        self.file = open(fpath, mode, buffering=1)

    def write(self, msg: str) -> None:
        self.console.write(msg)
        self.file.write(msg)

    def flush(self) -> None:
        self.console.flush()
        self.file.flush()
        os.fsync(self.file.fileno())

    def isatty(self) -> bool:
        return False

    def close(self) -> None:
        if not self.file.closed:
            self.flush()
            self.file.close()


def close_logger() -> None:
    """Stop teeing: close the log file and give stdout back to the console."""
    if isinstance(sys.stdout, Logger):
        logger = sys.stdout
        sys.stdout = logger.console
        logger.close()


def setup_logger(output: str | None, append: bool = False, banner: str = "") -> None:
    """Tee stdout to ``output`` (a .txt/.log file, or a folder that gets ``log.txt``).

    As in Dassl, an existing log is never overwritten: the new file gets a ``-%Y-%m-%d-%H-%M-%S``
    suffix. With ``append=True`` (every attempt of one training run) the log is continued instead, so
    the run has one ``log.txt`` from its first attempt to its result block. ``banner`` is written first
    (e.g. the attempt boundary).
    """
    close_logger()
    if output is None:
        return
    fpath = output if output.endswith((".txt", ".log")) else osp.join(output, "log.txt")
    mode = "w"
    if osp.exists(fpath):
        if append:
            mode = "a"
        else:
            fpath += time.strftime("-%Y-%m-%d-%H-%M-%S")
    sys.stdout = Logger(fpath, mode)
    if banner:
        print(("\n" if mode == "a" else "") + banner)
