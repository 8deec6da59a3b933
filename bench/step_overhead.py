"""Step overhead: time of one training step divided by a bare target forward on the same number of images.

For BLACKVIP, VPOUR and BAR on a CLIP ViT-B/32 target (or ViT-B/16 with ``--backbone``; random weights, as
speed does not depend on them),
with the paper's coordinator encoder (MAE ViT-B/16) for BLACKVIP. A ratio of 1.0 means the step costs no
more than the queries it must make. Steps and bare forwards are timed alternately, in one process.

    python -m bench.step_overhead [--batch 16] [--repeats 3] [--device cpu|cuda|all] [--backbone ViT-B/16]
"""

from __future__ import annotations

import argparse
import os.path as osp
import statistics
import tempfile
import time

import torch
from tabulate import tabulate

from bench.harness import build, machine, make_eurosat_folder, random_clip_checkpoint, random_mae_folder, write_json

OUT = osp.join(osp.dirname(osp.abspath(__file__)), "results", "step_overhead.json")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def measure(trainer, repeats: int) -> dict:
    """Median step time, median bare-forward time on the step's number of images, and their ratio."""
    batch = next(iter(trainer.train_loader_x))
    device = trainer.device
    trainer.set_model_mode("train")
    trainer.batch_idx, trainer.num_batches = 0, len(trainer.train_loader_x)
    images = batch["img"].to(device)
    points = trainer.zo.queries_per_step
    prompted = trainer.prompter(images).detach()
    bare_input = prompted.repeat(points, 1, 1, 1)
    trainer.forward_backward(batch)  # warm-up (and, for a cached coordinator, nothing else to fill)
    trainer.target(bare_input)
    steps, bares = [], []
    for _ in range(repeats):
        steps.append(timed(lambda: trainer.forward_backward(batch), device))
        bares.append(timed(lambda: trainer.target(bare_input), device))
    step, bare = statistics.median(steps), statistics.median(bares)
    return {"images_per_step": points * len(images), "step_s": step, "bare_forward_s": bare, "ratio": step / bare}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16, help="mini-batch size B (the reference uses 128)")
    parser.add_argument("--sp-avg", type=int, default=5, help="SPSA perturbations K (2K queries per step)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument(
        "--backbone",
        choices=["ViT-B/32", "ViT-B/16"],
        default="ViT-B/32",
        help="target architecture (the paper's BlackVIP runs use ViT-B/16)",
    )
    parser.add_argument("--out", default=None, help=f"JSON file (default {OUT}, _vit_b16 added for ViT-B/16)")
    args = parser.parse_args()
    if args.out is None:
        args.out = OUT if args.backbone == "ViT-B/32" else OUT.replace(".json", "_vit_b16.json")
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]

    work = tempfile.mkdtemp(prefix="bench-")
    data = make_eurosat_folder(osp.join(work, "data"), per_class=max(1, args.batch // 10 + 1))
    clip = random_clip_checkpoint(args.backbone, osp.join(work, "target.pt"))
    mae = random_mae_folder(osp.join(work, "mae"))
    common = [
        "MODEL.BACKBONE.NAME",
        args.backbone,
        "TARGET.CHECKPOINT",
        clip,
        "DATALOADER.NUM_WORKERS",
        0,
        "DATALOADER.TRAIN_X.BATCH_SIZE",
        args.batch,
        "VERBOSE",
        False,
    ]
    cases = [
        (
            "BLACKVIP",
            "encoder per step",
            [
                "TRAINER.BLACKVIP.PT_BACKBONE_PATH",
                mae,
                "TRAINER.BLACKVIP.SP_AVG",
                args.sp_avg,
                "TRAINER.BLACKVIP.PREC",
                "fp32",
            ],
        ),
        (
            "BLACKVIP",
            "cached features (noaug)",
            [
                "TRAINER.BLACKVIP.PT_BACKBONE_PATH",
                mae,
                "TRAINER.BLACKVIP.SP_AVG",
                args.sp_avg,
                "TRAINER.BLACKVIP.PREC",
                "fp32",
                "INPUT.TRANSFORMS",
                "['normalize']",
            ],
        ),
        ("VPOUR", "", ["TRAINER.VPOUR.SP_AVG", args.sp_avg]),
        ("BAR", "", ["TRAINER.BAR.SP_AVG", args.sp_avg, "INPUT.SIZE", "[194,194]"]),
    ]
    rows, results = [], []
    for device in devices:
        for method, variant, opts in cases:
            trainer = build(method, data, osp.join(work, "out", method), common + opts + ["USE_CUDA", device == "cuda"])
            trainer.before_train()
            r = {
                "device": device,
                "method": method,
                "variant": variant,
                "batch": args.batch,
                **measure(trainer, args.repeats),
            }
            results.append(r)
            rows.append(
                [
                    device,
                    method,
                    variant,
                    r["images_per_step"],
                    f"{r['step_s']:.2f}",
                    f"{r['bare_forward_s']:.2f}",
                    f"{r['ratio']:.3f}",
                ]
            )
            print(tabulate(rows[-1:], tablefmt="plain"), flush=True)
    print(tabulate(rows, headers=["device", "method", "variant", "images/step", "step s", "bare forward s", "ratio"]))
    write_json({"machine": machine(), "target": f"CLIP {args.backbone} (random weights)", "results": results}, args.out)
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
