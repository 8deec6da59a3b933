"""Peak training memory per method (CPU RSS; CUDA max allocated where available), beside the paper's Table 4.

Each method runs a few training steps in its own process, on a CLIP ViT-B/16 target with random weights
(memory does not depend on weight values) and the paper's MAE ViT-B/16 coordinator encoder for BLACKVIP.
The white-box references FT (the whole image encoder) and LP (a linear head on frozen features) complete the
table's layout; they back-propagate through CLIP's weights, so they are no black-box method.

    python -m bench.memory [--batch 32] [--steps 2] [--device cpu|cuda] [--methods FT LP ...]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import io
import json
import os.path as osp
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import torch
from tabulate import tabulate

from bench.harness import (
    REPO,
    build,
    machine,
    make_eurosat_folder,
    random_clip_checkpoint,
    random_mae_folder,
    write_json,
)
from trainers.methods import method_label

CLASS_COUNTED = {"LP"}
"""Methods whose learnable count grows with the class count (LP's head: 512 x classes + classes)."""
OUT = osp.join(osp.dirname(osp.abspath(__file__)), "results", "memory.json")
METHODS = ["FT", "LP", "VPWB", "BAR", "VPOUR", "BLACKVIP"]
# Paper Table 4 (ImageNet, ViT-B/16 target): peak memory MB and learnable parameters.
PAPER = {
    "FT": (21655, "86M"),
    "LP": (1587, "513K (1000 classes)"),
    "VPWB": (11937, "69K"),
    "BAR": (1649, "37K"),
    "VPOUR": (1665, "69K"),
    "BLACKVIP": (2428, "9K"),
}


class RSSSampler:
    """Highest resident set size seen while active, sampled every few milliseconds (Linux ``/proc``)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval, self.peak, self._stop = interval, current_rss_mb(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, current_rss_mb())
            time.sleep(self.interval)

    def __enter__(self) -> RSSSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, current_rss_mb())


def current_rss_mb() -> float:
    """Resident set size now (falls back to the lifetime peak where /proc is unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def release_freed_memory() -> None:
    """Return memory freed during model loading to the OS, so the baseline is what the run actually holds."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def learnable_parameters(trainer) -> int:
    """The count the trainer logs: its prompter's, or the white-box references' own."""
    prompter = getattr(trainer, "prompter", None)
    return prompter.num_learnable() if prompter is not None else trainer.num_learnable()


def child(method: str, work: str, batch: int, steps: int, device: str) -> dict:
    """Build one trainer, run ``steps`` training steps and report memory high-water marks."""
    data = osp.join(work, "data")
    opts = [
        "MODEL.BACKBONE.NAME",
        "ViT-B/16",
        "TARGET.CHECKPOINT",
        osp.join(work, "vit_b16.pt"),
        "DATALOADER.NUM_WORKERS",
        0,
        "DATALOADER.TRAIN_X.BATCH_SIZE",
        batch,
        "USE_CUDA",
        device == "cuda",
        "TRAINER.BLACKVIP.PT_BACKBONE_PATH",
        osp.join(work, "mae"),
    ]
    if method == "BAR":
        opts += ["INPUT.SIZE", "[194,194]"]
    with contextlib.redirect_stdout(io.StringIO()):
        trainer = build(method, data, osp.join(work, "out", method), opts)
        trainer.before_train()
    release_freed_memory()
    built = current_rss_mb()
    if trainer.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer.set_model_mode("train")
    trainer.num_batches = len(trainer.train_loader_x)
    batches = iter(trainer.train_loader_x)
    with contextlib.redirect_stdout(io.StringIO()), RSSSampler() as sampler:
        for trainer.batch_idx in range(steps):
            trainer.forward_backward(next(batches))
    out = {
        "method": method,
        "rss_after_build_mb": built,
        "rss_peak_mb": sampler.peak,
        "learnable_parameters": learnable_parameters(trainer),
        "classes": trainer.num_classes,
    }
    if trainer.device.type == "cuda":
        out["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def measure(args: argparse.Namespace, work: str) -> tuple[list[dict], list[list[str]]]:
    """Build the data and checkpoints in ``work`` and measure each method in a child process; results and rows."""
    make_eurosat_folder(osp.join(work, "data"), per_class=args.batch // 10 * args.steps + args.steps + 1)
    random_clip_checkpoint("ViT-B/16", osp.join(work, "vit_b16.pt"))
    if "BLACKVIP" in args.methods:
        random_mae_folder(osp.join(work, "mae"))
    results, rows = [], []
    for method in args.methods:
        cmd = [
            sys.executable,
            "-m",
            "bench.memory",
            "--child",
            method,
            "--work",
            work,
            "--batch",
            str(args.batch),
            "--steps",
            str(args.steps),
            "--device",
            args.device,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=REPO)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(r)
        paper_mb, paper_params = PAPER[method]
        row = [
            method_label(method),
            f"{r['rss_after_build_mb']:,.0f}",
            f"{r['rss_peak_mb']:,.0f}",
            f"{r['rss_peak_mb'] - r['rss_after_build_mb']:,.0f}",
        ]
        if "cuda_max_allocated_mb" in r:
            row.append(f"{r['cuda_max_allocated_mb']:,.0f}")
        learnable = f"{r['learnable_parameters']:,}"
        if method in CLASS_COUNTED:
            learnable += f" ({r['classes']} classes)"
        rows.append(row + [learnable, f"{paper_mb:,}", paper_params])
        print(rows[-1], flush=True)
    return results, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32, help="mini-batch size (the paper's runs use 128)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=METHODS, help="rows to measure, in this order")
    parser.add_argument("--out", default=OUT)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.work, args.batch, args.steps, args.device)))
        return

    work = tempfile.mkdtemp(prefix="bench-mem-")
    try:
        results, rows = measure(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    headers = ["method", "RSS after build MB", "RSS peak MB", "training adds MB"]
    if args.device == "cuda":
        headers.append("CUDA max allocated MB")
    headers += ["learnable", "paper MB (ImageNet, GPU)", "paper params"]
    print(tabulate(rows, headers=headers))
    write_json(
        {
            "machine": machine(),
            "device": args.device,
            "batch": args.batch,
            "target": "CLIP ViT-B/16 (random)",
            "results": results,
        },
        args.out,
    )
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
