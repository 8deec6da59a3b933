"""Small file, seeding and environment helpers shared by the engine and plugins."""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import os.path as osp
import random
import tempfile
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import PIL
import torch
from PIL import Image

from .registry import check_availability

__all__ = [
    "mkdir_if_missing",
    "check_isfile",
    "read_json",
    "write_json",
    "atomic_write",
    "remove_stale_temp_files",
    "set_random_seed",
    "download_url",
    "read_image",
    "collect_env_info",
    "listdir_nohidden",
    "get_most_similar_str_to_a_from_b",
    "check_availability",
    "tolist_if_not",
    "pid_alive",
]


def mkdir_if_missing(dirname: str) -> None:
    os.makedirs(dirname, exist_ok=True)


def check_isfile(fpath: str) -> bool:
    """True if ``fpath`` is a file; warns otherwise (as Dassl does)."""
    isfile = osp.isfile(fpath)
    if not isfile:
        warnings.warn(f'No file found at "{fpath}"', stacklevel=2)
    return isfile


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(fpath: str) -> None:
    """Delete the temporary files that killed :func:`atomic_write` calls for ``fpath`` left behind.

    Temporary names carry the writer's process id; files of processes that are still alive are kept.
    """
    dirname, base = osp.split(osp.abspath(fpath))
    prefix = f".{base}."
    if not osp.isdir(dirname):
        return
    for name in os.listdir(dirname):
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        pid = name[len(prefix) :].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            with contextlib.suppress(OSError):
                os.remove(osp.join(dirname, name))


@contextmanager
def atomic_write(fpath: str, mode: str = "w") -> Iterator[Any]:
    """Write to a temporary file next to ``fpath`` and rename it into place only on success.

    A crash or error mid-write leaves any previous file untouched and no partial file behind; the temporary
    files of writers that were killed (SIGKILL) are removed by the next write of the same file. The file gets
    the permissions of a normally created one (``0666`` minus the umask), so a group can read shared results.
    """
    dirname = osp.dirname(osp.abspath(fpath))
    mkdir_if_missing(dirname)
    remove_stale_temp_files(fpath)
    fd, tmp = tempfile.mkstemp(dir=dirname, prefix=f".{osp.basename(fpath)}.{os.getpid()}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, fpath)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def read_json(fpath: str) -> Any:
    with open(fpath) as f:
        return json.load(f)


def write_json(obj: Any, fpath: str) -> None:
    """Write JSON (indent 4, Dassl's separators) atomically."""
    with atomic_write(fpath) as f:
        json.dump(obj, f, indent=4, separators=(",", ": "))


def set_random_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def download_url(url: str, dst: str) -> None:
    """Fetch ``url`` to ``dst`` (atomically); only called when a user asks for a download."""
    print(f'* url="{url}"')
    print(f'* destination="{dst}"')
    with urllib.request.urlopen(url) as response, atomic_write(dst, "wb") as f:
        while chunk := response.read(1 << 20):
            f.write(chunk)


def read_image(path: str) -> Image.Image:
    """Read an image as RGB; a missing or unreadable file raises an error naming the path."""
    if not osp.exists(path):
        raise FileNotFoundError(
            f'Image not found: "{path}". Check the dataset folder (see `python -m datasets.prepare`).'
        )
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, SyntaxError, ValueError) as e:
        raise OSError(
            f'Cannot read image "{path}" ({type(e).__name__}: {e}). The file is corrupt or not an image; '
            f"replace it or remove it from the split."
        ) from None


def collect_env_info() -> str:
    from torch.utils.collect_env import get_pretty_env_info

    return f"{get_pretty_env_info()}\n        Pillow ({PIL.__version__})"


def listdir_nohidden(path: str, sort: bool = False) -> list[str]:
    items = [f for f in os.listdir(path) if not f.startswith(".")]
    return sorted(items) if sort else items


def get_most_similar_str_to_a_from_b(a: str, b: list[str]) -> str:
    return max(b, key=lambda s: difflib.SequenceMatcher(None, a, s).ratio())


def tolist_if_not(x: Any) -> list:
    return x if isinstance(x, list) else [x]
