"""Accuracy against image queries on the quickstart task, for each method and BlackVIP's query-saving variants.

Each run trains exactly as the quickstart does and is evaluated on the test set every ``--every`` epochs.
Evaluations run in a forked random state and count their queries under "test", so the training, and its
query count, are the same as an un-instrumented run's.

    python -m bench.queries [--epochs 120] [--every 10] [--seeds 1 2 3] [--variants blackvip blackvip-one-sided ...]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass

import torch
from tabulate import tabulate

import train
from bench.harness import machine, write_json
from dassl.engine import build_trainer
from dassl.utils import set_random_seed
from scripts.quickstart import prepare_data
from trainers.methods import method_label
from trainers.results import RunResults

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
OUT = osp.join(REPO, "bench", "results", "queries.json")
PLOT = osp.join(REPO, "bench", "results", "queries.png")


@dataclass(frozen=True)
class Variant:
    """A method (registered trainer and quickstart config) with extra overrides; ``detail`` names the change."""

    name: str
    trainer: str
    config: str
    opts: tuple = ()
    detail: str = ""

    @property
    def label(self) -> str:
        return method_label(self.trainer) + (f" ({self.detail})" if self.detail else "")


VARIANTS = {
    v.name: v
    for v in [
        Variant("blackvip", "BLACKVIP", "blackvip"),
        Variant("blackvip-one-sided", "BLACKVIP", "blackvip", ("TRAINER.BLACKVIP.ONE_SIDED", True), "one-sided"),
        Variant("blackvip-clipped", "BLACKVIP", "blackvip", ("TRAINER.BLACKVIP.CLIP_NORM", 25.0), "clipped"),
        Variant("vpour", "VPOUR", "vpour"),
        Variant("bar", "BAR", "bar"),
    ]
}


def ensure_data(root: str) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        prepare_data(root)


def build(variant: Variant, seed: int, data: str, out: str, epochs: int):
    argv = [
        "--root",
        data,
        "--seed",
        str(seed),
        "--trainer",
        variant.trainer,
        "--dataset-config-file",
        osp.join(REPO, "configs/quickstart/task.yaml"),
        "--config-file",
        osp.join(REPO, f"configs/quickstart/{variant.config}.yaml"),
        "--output-dir",
        out,
        "OPTIM.MAX_EPOCH",
        str(epochs),
        *[str(o) for o in variant.opts],
    ]
    return build_trainer(train.setup_cfg(train.parse_args(argv)))


def curve(variant: Variant, seed: int, data: str, epochs: int, every: int) -> list[dict]:
    """(epoch, training image queries, test accuracy, seconds) every ``every`` epochs, starting before training."""
    train.load_plugins()
    set_random_seed(seed)
    with contextlib.redirect_stdout(io.StringIO()):
        trainer = build(variant, seed, data, tempfile.mkdtemp(prefix="bench-q-"), epochs)
    points, clock = [], {"train": 0.0}

    def evaluate(epoch: int) -> None:
        with torch.random.fork_rng(), contextlib.redirect_stdout(io.StringIO()):
            acc = trainer.test()
        points.append(
            {
                "epoch": epoch,
                "queries": trainer.target.counter.images("train"),
                "accuracy": acc,
                "train_s": clock["train"],
            }
        )

    original = trainer.after_epoch

    def after_epoch() -> None:
        original()
        clock["train"] = trainer.train_seconds
        if (trainer.epoch + 1) % every == 0 or trainer.epoch + 1 == trainer.max_epoch:
            evaluate(trainer.epoch + 1)

    trainer.after_epoch = after_epoch
    with contextlib.redirect_stdout(io.StringIO()):
        evaluate(0)
        trainer.train()
    return points


def zero_shot(data: str) -> float:
    out = tempfile.mkdtemp(prefix="bench-zs-")
    argv = [
        "--root",
        data,
        "--seed",
        "1",
        "--trainer",
        "ZeroshotCLIP",
        "--dataset-config-file",
        osp.join(REPO, "configs/quickstart/task.yaml"),
        "--config-file",
        osp.join(REPO, "configs/quickstart/zeroshot.yaml"),
        "--output-dir",
        out,
        "--eval-only",
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        return RunResults.from_dict(train.main(train.parse_args(argv)), source="zero-shot run").accuracy


def plot(results: dict, zs: float, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, runs in results.items():
        xs = [p["queries"] for p in runs[0]]
        means = [statistics.mean(r[i]["accuracy"] for r in runs) for i in range(len(xs))]
        ax.plot(xs, means, marker="o", ms=3, label=f"{VARIANTS[name].label} ({len(runs)} seeds)")
    ax.axhline(zs, color="gray", linestyle="--", label="zero-shot")
    ax.set_xlabel("training image queries")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Colour-Biased MNIST, LeNet-5 black box")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=120, help="training epochs per run (5 steps each)")
    parser.add_argument("--every", type=int, default=10, help="evaluate every this many epochs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--data", default=osp.join(REPO, "data", "quickstart"))
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="runs in parallel")
    parser.add_argument("--out", default=OUT)
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    ensure_data(args.data)
    if args.child:
        torch.set_num_threads(1)
        import json

        print(json.dumps(curve(VARIANTS[args.child[0]], int(args.child[1]), args.data, args.epochs, args.every)))
        return

    import json
    from concurrent.futures import ThreadPoolExecutor

    def child(name: str, seed: int) -> list[dict]:
        cmd = [
            sys.executable,
            "-m",
            "bench.queries",
            "--child",
            name,
            str(seed),
            "--epochs",
            str(args.epochs),
            "--every",
            str(args.every),
            "--data",
            args.data,
        ]
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    zs = zero_shot(args.data)
    tasks = [(name, seed) for name in args.variants for seed in args.seeds]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        curves = list(pool.map(lambda t: child(*t), tasks))
    results: dict[str, list[list[dict]]] = {}
    for (name, _), points in zip(tasks, curves):
        results.setdefault(name, []).append(points)

    rows = []
    for name, runs in results.items():
        for i, point in enumerate(runs[0]):
            accs = [r[i]["accuracy"] for r in runs]
            spread = f" ± {statistics.stdev(accs):.1f}" if len(accs) > 1 else ""
            rows.append(
                [
                    VARIANTS[name].label,
                    point["epoch"] * 5,
                    f"{point['queries']:,}",
                    f"{statistics.mean(accs):.1f}{spread}",
                    f"{statistics.mean(r[i]['train_s'] for r in runs):.0f}",
                ]
            )
    print(f"zero-shot accuracy: {zs:.1f}%")
    print(
        tabulate(
            rows,
            headers=["method", "steps", "image queries", "test accuracy % (mean ± sd)", "train seconds"],
            disable_numparse=True,
        )
    )
    write_json(
        {"machine": machine(), "zero_shot": zs, "epochs": args.epochs, "seeds": args.seeds, "curves": results}, args.out
    )
    plot(results, zs, osp.splitext(args.out)[0] + ".png")
    print(f"Wrote {args.out} and {osp.splitext(args.out)[0]}.png")


if __name__ == "__main__":
    main()
