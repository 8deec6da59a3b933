"""Query efficiency of BlackVIP's estimators: accuracy against image queries, on two real black boxes, many seeds.

Each (task, variant, seed) trains as the quickstart does and is evaluated on the test set whenever its training
queries cross a log-spaced mark (1,000 x 2^(i/2)) and at the end. Evaluations run in a forked random state, in
eval mode, and count their queries under "test", so training (and its query count) is that of an un-instrumented
run. Validation queries (plateau stopping) count as training cost. Finished runs are kept in
``bench/results/efficiency/<task>/<variant>/seed<N>.json`` and skipped, so the command continues where it stopped.

    python -m bench.efficiency [--tasks lenet lenet-adv] [--variants reference one-sided ...] [--seeds 1 2 3 4 5]
        [--jobs 2] [--report]

``--report`` (no training) reads the kept runs and prints the tables: accuracy at the marks, queries to reach the
reference's final mean, and the paired bootstrap of each variant against the reference at 10% of its queries.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
RESULTS = osp.join(REPO, "bench", "results", "efficiency")
STEPS_PER_EPOCH = 5  # quickstart: 16 shots x 10 classes at batch 32
MARGIN = 1.0  # pre-declared non-inferiority margin, accuracy points
SHARE = 0.10  # the goal: the reference's final accuracy with this share of its queries
REFERENCE_QUERIES = 120 * STEPS_PER_EPOCH * 10 * 32  # 600 steps x 2K = 10 points x 32 images = 192,000
SHARE_MARKS = (int(SHARE * REFERENCE_QUERIES), int(2 * SHARE * REFERENCE_QUERIES))  # also evaluated at 10% and 20%


@dataclass(frozen=True)
class Task:
    name: str
    title: str
    opts: tuple = ()


TASKS = {
    t.name: t
    for t in [
        Task("lenet", "Colour-Biased MNIST, LeNet-5"),
        Task(
            "lenet-adv",
            "Colour-Biased MNIST, adversarially trained LeNet-5",
            ("TARGET.CLASSIFIER.ARCH", "lenet5-mnist-adv"),
        ),
    ]
}


@dataclass(frozen=True)
class Variant:
    """BlackVIP on the quickstart config with ``opts`` overrides, trained for ``epochs``; ``tuning`` marks the runs
    used to choose settings (reported apart from the final runs)."""

    name: str
    detail: str
    epochs: int
    opts: tuple = ()
    config: str = "blackvip"
    tuning: bool = False


B = "TRAINER.BLACKVIP."
VARIANTS = {
    v.name: v
    for v in [
        Variant("reference", "two-sided SPSA-GC, K=5 (reference)", 120),
        Variant("one-sided", "one-sided SPSA-GC, K=5", 40, (B + "ONE_SIDED", True)),
        Variant("k1", "two-sided SPSA-GC, K=1", 60, (B + "SP_AVG", 1)),
        Variant("gaussian", "two-sided, K=5 Gaussian directions", 12, (B + "DIRECTIONS", "gaussian")),
        Variant(
            "orthogonal",
            "two-sided, K=5 orthogonal Gaussian directions",
            12,
            (B + "DIRECTIONS", "orthogonal"),
        ),
        Variant("clip-sqrt-d", "SPSA-GC, estimate clipped at sqrt(d)", 12, (B + "CLIP_NORM", -1.0)),
        Variant(
            "clip-sqrt-d-no-gc", "SPSA (no GC), clipped at sqrt(d)", 12, (B + "CLIP_NORM", -1.0, B + "OPT_TYPE", "spsa")
        ),
        Variant("subspace", "SPSA-GC in a 256-d random subspace", 12, (B + "SUBSPACE_DIM", 256)),
        Variant(
            "history",
            "SPSA-GC, guided by the last estimate (alpha 0.5)",
            12,
            (B + "DIRECTIONS", "guided", B + "HISTORY_ALPHA", 0.5),
        ),
        Variant("per-image", "per-image prompt-space estimates (efficient preset)", 120, config="blackvip_efficient"),
        Variant(
            "per-image-adam",
            "per-image, Adam in place of the correction (a=0.1)",
            60,
            (B + "UPDATE", "adam", B + "SPSA_PARAMS", [20.0, 0.05, 0.1, 0.4, 0.1]),
            config="blackvip_efficient",
        ),
        Variant(
            "true-gradient",
            "white-box bound: the exact gradient, same update, a=0.01 (1 query per image)",
            120,
            (B + "SPSA_PARAMS", [20.0, 0.05, 0.01, 0.4, 0.1]),
            config="blackvip_efficient",
        ),
        Variant(
            "per-image-plateau",
            "per-image + stop on a validation plateau",
            120,
            ("TRAIN.PLATEAU_EVERY", 25, "TRAIN.PLATEAU_PATIENCE", 4),
            config="blackvip_efficient",
        ),
    ]
}

# Tuning runs (seed 1 only, reported apart from the final runs): the gains and settings of the per-image estimator,
# whose estimate has another scale than the reference's.
TUNING = {
    "a0.3-c0.5": (),
    "a0.3-c0.05": (),
    "a0.1-c0.5": (),
    "a0.1-c0.05": (),
    "a0.01-c0.05": (),
    "a0.003-c0.05": (),
    "a0.001-c0.05": (),
    "a0.003-c0.5": (),
    "a0.003-c0.05-two-sided": (B + "ONE_SIDED", False),
    "a0.003-c0.05-moms0.5": (B + "MOMS", 0.5),
    "a0.03-c0.05-no-gc": (B + "OPT_TYPE", "prompt-spsa"),
    "a0.003-c0.05-freq4": (B + "PROMPT_FREQ", 4),
    "a0.003-c0.05-freq14": (B + "PROMPT_FREQ", 14),
    "a0.003-c0.05-pixel": (B + "PROMPT_BASIS", "pixel"),
    "a0.005-c0.05": (),
    "a0.002-c0.05": (),
    "a0.003-c0.05-alpha0.2": (B + "SPSA_PARAMS", [20.0, 0.05, 0.003, 0.2, 0.1]),
    "a0.003-c0.05-q2": (B + "SP_AVG", 2),
    "a0.006-c0.05-clip5": (B + "CLIP_NORM", 5.0),
    "a0.001-c0.05-adam": (B + "UPDATE", "adam"),
    "a0.003-c0.05-adam": (B + "UPDATE", "adam"),
    "a0.01-c0.05-adam": (B + "UPDATE", "adam"),
    "a0.01-c0.05-q5": (B + "SP_AVG", 5),
    "a0.003-c0.05-floor0.02-long": (B + "PROMPT_FLOOR", 0.02, "OPTIM.MAX_EPOCH", 180),
    "a0.003-c0.05-freq14-long": (B + "PROMPT_FREQ", 14, "OPTIM.MAX_EPOCH", 180),
    "a0.03-c0.05-adam": (B + "UPDATE", "adam"),
    "a0.1-c0.05-adam": (B + "UPDATE", "adam"),
}
for _key, _opts in TUNING.items():
    _a, _c = (float(part[1:]) for part in _key.split("-")[:2])
    VARIANTS[f"tune-per-image-{_key}"] = Variant(
        f"tune-per-image-{_key}",
        f"per-image, {_key.replace('-', ', ')}",
        60,
        (B + "SPSA_PARAMS", [20.0, _c, _a, 0.4, 0.1], *_opts),
        config="blackvip_efficient",
        tuning=True,
    )


VARIANTS["true-gradient-dct7"] = Variant(
    "true-gradient-dct7",
    "white-box bound through the 7 x 7 DCT projection, a=0.01",
    120,
    (B + "SPSA_PARAMS", [20.0, 0.05, 0.01, 0.4, 0.1]),
    config="blackvip_efficient",
)
for _a in (0.003, 0.03):
    VARIANTS[f"true-gradient-a{_a:g}"] = Variant(
        f"true-gradient-a{_a:g}",
        f"white-box bound, a={_a:g}",
        60,
        (B + "SPSA_PARAMS", [20.0, 0.05, _a, 0.4, 0.1]),
        config="blackvip_efficient",
        tuning=True,
    )


def marks(limit: int) -> list[int]:
    """Log-spaced query marks 1,000 x 2^(i/2) up to ``limit``."""
    out, i = [], 0
    while (m := round(1000 * 2 ** (i / 2))) <= limit:
        out.append(m)
        i += 1
    return out


def run_path(task: str, variant: str, seed: int, root: str = RESULTS) -> str:
    return osp.join(root, task, variant, f"seed{seed}.json")


def curve(task: Task, variant: Variant, seed: int, data: str) -> dict:
    """Train one run; test accuracy each time the training queries cross a mark, and at the end."""
    import torch

    import train
    from dassl.engine import build_trainer
    from dassl.utils import set_random_seed

    train.load_plugins()
    set_random_seed(seed)
    argv = [
        "--root",
        data,
        "--seed",
        str(seed),
        "--trainer",
        "BLACKVIP",
        "--dataset-config-file",
        osp.join(REPO, "configs/quickstart/task.yaml"),
        "--config-file",
        osp.join(REPO, f"configs/quickstart/{variant.config}.yaml"),
        "--output-dir",
        tempfile.mkdtemp(prefix="bench-eff-"),
        "OPTIM.MAX_EPOCH",
        str(variant.epochs),
        *[json.dumps(o) if isinstance(o, list) else str(o) for o in (*task.opts, *variant.opts)],
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        trainer = build_trainer(train.setup_cfg(train.parse_args(argv)))
    if variant.name.startswith("true-gradient"):
        use_true_gradient(trainer, project=7 if variant.name.endswith("-dct7") else 0)
    counter = trainer.target.counter
    pending = sorted({*marks(10**9), *SHARE_MARKS})
    points: list[dict] = []

    def spent() -> int:
        return counter.images("train") + counter.images("val")

    def evaluate() -> None:
        with torch.random.fork_rng(), contextlib.redirect_stdout(io.StringIO()):
            acc = trainer.test()
        trainer.set_model_mode("train")
        points.append({"queries": spent(), "step": trainer.zo.k, "accuracy": acc, "train_s": trainer.train_seconds})

    original = trainer.forward_backward

    def forward_backward(batch: dict) -> dict:
        out = original(batch)
        if pending and spent() >= pending[0]:
            while pending and spent() >= pending[0]:
                pending.pop(0)
            evaluate()
        return out

    trainer.forward_backward = forward_backward
    with contextlib.redirect_stdout(io.StringIO()):
        evaluate()
        trainer.train()
    final = trainer.test_results or {}
    return {
        "task": task.name,
        "variant": variant.name,
        "seed": seed,
        "points": points,
        "final": {
            "queries": spent(),
            "accuracy": float(final.get("accuracy", points[-1]["accuracy"])),
            "steps": trainer.zo.k,
            "stopped_by": trainer.stopped_by,
            "train_s": trainer.train_seconds,
        },
    }


def use_true_gradient(trainer, project: int = 0) -> None:
    """Replace the per-image estimate by the exact gradient of the batch loss (autograd through the local target):
    the same SPSA-GC update and gains, one query per image. Not a black-box method: the bound on what any estimator
    with this update could do in the same number of steps. ``project`` > 0: each image's prompt gradient is first
    projected onto its ``project`` x ``project`` lowest DCT frequencies (what the dct basis estimates, noise-free)."""
    import torch

    from trainers.zo import clip_grad_norm
    from trainers.zo.prompt_space import dct_rows

    zo, prompter = trainer.zo, trainer.prompter

    def step_prompts(w, prompts_of, oracle):
        w = zo._as_vector(w)
        k = zo.k + 1
        a_k, _ = zo.gains.at(k)
        leaf = w.clone().requires_grad_(True)
        with torch.enable_grad():
            prompts = prompts_of(leaf)
            images = prompter.render(oracle.ctx.x, prompts)
            logits = trainer.target.logits_with_input_grad(images).float()
            losses = trainer.loss(logits, oracle.labels)
            if project:
                (g_prompts,) = torch.autograd.grad(losses.mean(), prompts, retain_graph=True)
                D = dct_rows(prompts.shape[-1], project).to(prompts)
                low = torch.einsum("kh,nchw,lw->nckl", D, g_prompts, D)
                g_prompts = torch.einsum("kh,nckl,lw->nchw", D, low, D)
                (grad,) = torch.autograd.grad(prompts, leaf, g_prompts)
            else:
                (grad,) = torch.autograd.grad(losses.mean(), leaf)
        oracle.stats["correct"] = logits.argmax(1).eq(oracle.labels).sum().view(1)
        grad = clip_grad_norm(grad.detach(), zo.clip_norm)
        return zo._update(w, losses.detach().mean().view(1), grad, a_k, k)

    zo.step_prompts = step_prompts
    zo.queries_per_step = 1

    def forward_backward(batch):
        images, labels = trainer.parse_batch_train(batch)
        ctx = trainer.prepare_batch(batch, images)
        stats: dict = {}

        class Oracle:
            pass

        oracle = Oracle()
        oracle.ctx, oracle.labels, oracle.stats = ctx, labels, stats
        step = zo.step_prompts(prompter.get_flat().to(trainer.device), lambda v: prompter.prompts(ctx, v), oracle)
        prompter.set_flat(step.w)
        return {"loss": step.losses.mean().item(), "acc": 100.0 * stats["correct"].item() / len(labels)}

    trainer.forward_backward = forward_backward


def run_child(task: str, variant: str, seed: int, data: str, root: str) -> None:
    path = run_path(task, variant, seed, root)
    if osp.exists(path):
        return
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    cmd = [sys.executable, "-m", "bench.efficiency", "--child", task, variant, str(seed), "--data", data]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"FAILED {task} {variant} seed {seed}:\n{done.stderr[-3000:]}", flush=True)
        return
    os.makedirs(osp.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(done.stdout.strip().splitlines()[-1])
    os.replace(tmp, path)
    print(f"done {task} {variant} seed {seed}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    compared = [name for name, v in VARIANTS.items() if not v.tuning]
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=list(VARIANTS),
        metavar="NAME",
        help=f"default: the compared variants ({', '.join(compared)}), and with --report every kept run; the tuning "
        "runs (tune-*, true-gradient-a*) were run with --seeds 1",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--data", default=osp.join(REPO, "data", "quickstart"))
    parser.add_argument("--results", default=RESULTS)
    parser.add_argument("--report", action="store_true", help="only print the tables of the kept runs")
    parser.add_argument("--child", nargs=3, metavar=("TASK", "VARIANT", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.variants is None:
        args.variants = list(VARIANTS) if args.report else compared
    if args.child:
        import torch

        torch.set_num_threads(1)
        task, variant, seed = args.child
        print(json.dumps(curve(TASKS[task], VARIANTS[variant], int(seed), args.data)))
        return
    if not args.report:
        from scripts.quickstart import prepare_data

        with contextlib.redirect_stdout(io.StringIO()):
            prepare_data(args.data)
        jobs = [(t, v, s) for t in args.tasks for v in args.variants for s in args.seeds]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            list(pool.map(lambda j: run_child(*j, args.data, args.results), jobs))
    from bench.efficiency_report import report

    report(args.results, args.tasks, args.variants)


if __name__ == "__main__":
    main()
