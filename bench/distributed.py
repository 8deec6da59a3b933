"""Step-time speed-up of a BLACKVIP run split over N processes (the torchrun mode of train.py) against one process.

Each setting starts its processes (a gloo group on CPU, NCCL with one GPU each on CUDA), builds the same trainer in
each, and times training steps between barriers; settings alternate within one run (1, N, 1, N, ...) so both see
the same machine load, and the median per setting is reported. On CPU the cores are shared out: one process uses
them all, N processes use cores/N threads each. Target: a CLIP with random weights (speed does not depend on
them), coordinator encoder: the paper's MAE ViT-B/16 with random weights.

    python -m bench.distributed                                   # CPU: 1 vs 2 processes, ViT-B/32 target
    python -m bench.distributed --threads 1 --out /tmp/one_core_each.json   # one core per process
    python -m bench.distributed --device cuda --processes 1,2,4,8 --backbone ViT-B/16 --batch 32
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import statistics
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from tabulate import tabulate

from bench.harness import build, machine, make_eurosat_folder, random_clip_checkpoint, random_mae_folder, write_json

OUT = osp.join(osp.dirname(osp.abspath(__file__)), "results", "distributed.json")


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _worker(rank: int, world: int, init_file: str, setting: dict, opts: list, out: dict) -> None:
    """One process of a setting: join the group, build the trainer, time ``steps`` steps (rank 0 reports)."""
    device = setting["device"]
    if device == "cpu":
        torch.set_num_threads(setting["threads"] or max(1, setting["cores"] // world))
    else:
        torch.cuda.set_device(rank)
    if world > 1:
        backend = "nccl" if device == "cuda" else "gloo"
        dist.init_process_group(backend, init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        trainer = build("BLACKVIP", setting["data"], osp.join(setting["work"], f"out{world}-{rank}"), opts)
        trainer.before_train()  # what a run does first (e.g. the coordinator's feature cache)
        trainer.set_model_mode("train")
        trainer.batch_idx, trainer.num_batches = 0, len(trainer.train_loader_x)
        batch = next(iter(trainer.train_loader_x))
        trainer.forward_backward(batch)  # warm-up (fills the feature cache when the transform allows it)
        times = []
        for _ in range(setting["steps"]):
            if world > 1:
                dist.barrier()
            start = time.perf_counter()
            trainer.forward_backward(batch)
            _sync(device)
            if world > 1:
                dist.barrier()
            times.append(time.perf_counter() - start)
        if rank == 0:
            out[world] = out.get(world, []) + [statistics.median(times)]
    finally:
        if world > 1:
            dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--processes", default="1,2", help="comma-separated process counts to compare (1 first)")
    parser.add_argument("--backbone", choices=["ViT-B/32", "ViT-B/16"], default="ViT-B/32", help="target")
    parser.add_argument("--batch", type=int, default=4, help="mini-batch size B")
    parser.add_argument("--sp-avg", type=int, default=5, help="SPSA perturbations K (2K points per step)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per setting and repeat")
    parser.add_argument("--repeats", type=int, default=2, help="rounds over the settings")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="CPU cores shared out (CPU mode)")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="threads per process in CPU mode (0: the cores shared out; 1: one core per process, as GPUs are)",
    )
    parser.add_argument(
        "--encoder-per-step",
        action="store_true",
        help="random augmentation, so the coordinator's encoder runs every step on every process (else its "
        "features are cached: the reference's deterministic transform)",
    )
    parser.add_argument("--out", default=OUT)
    args = parser.parse_args()
    counts = [int(n) for n in args.processes.split(",")]
    if args.device == "cuda" and max(counts) > torch.cuda.device_count():
        raise SystemExit(f"--processes {args.processes} needs {max(counts)} GPUs; {torch.cuda.device_count()} visible")

    work = tempfile.mkdtemp(prefix="bench-distributed-")
    data = make_eurosat_folder(osp.join(work, "data"), per_class=max(1, args.batch // 10 + 1))
    clip = random_clip_checkpoint(args.backbone, osp.join(work, "target.pt"))
    mae = random_mae_folder(osp.join(work, "mae"))
    opts = [
        *("MODEL.BACKBONE.NAME", args.backbone, "TARGET.CHECKPOINT", clip, "DATALOADER.NUM_WORKERS", 0),
        *("DATALOADER.TRAIN_X.BATCH_SIZE", args.batch, "VERBOSE", False, "USE_CUDA", args.device == "cuda"),
        *("TRAINER.BLACKVIP.PT_BACKBONE_PATH", mae, "TRAINER.BLACKVIP.SP_AVG", args.sp_avg),
        *("TRAINER.BLACKVIP.PREC", "fp32"),
        *([] if args.encoder_per_step else ["INPUT.TRANSFORMS", "['normalize']"]),
    ]
    setting = {
        "device": args.device,
        "cores": args.cores,
        "threads": args.threads,
        "data": data,
        "work": work,
        "steps": args.steps,
    }
    times = mp.Manager().dict()
    for round_ in range(args.repeats):
        for n in counts:
            init = osp.join(work, f"init-{round_}-{n}")
            mp.spawn(_worker, args=(n, init, setting, opts, times), nprocs=n, join=True)
            print(f"round {round_ + 1}: {n} process(es) {times[n][-1]:.3f} s/step", flush=True)

    base = statistics.median(times[counts[0]])
    rows, results = [], []
    for n in counts:
        step = statistics.median(times[n])
        speedup = base / step
        results.append({"processes": n, "step_s": step, "speedup": speedup, "efficiency": speedup / n})
        rows.append([n, f"{step:.3f}", f"{speedup:.2f}", f"{speedup / n:.2f}"])
    print(tabulate(rows, headers=["processes", "step s (median)", "speed-up", "speed-up / processes"]))
    write_json(
        {
            "machine": machine(),
            "device": args.device,
            "target": f"CLIP {args.backbone} (random weights)",
            "batch": args.batch,
            "points_per_step": 2 * args.sp_avg,
            "encoder": "per step" if args.encoder_per_step else "cached features",
            "cores": args.cores if args.device == "cpu" else None,
            "threads_per_process": (args.threads or "cores / processes") if args.device == "cpu" else None,
            "results": results,
        },
        args.out,
    )
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
