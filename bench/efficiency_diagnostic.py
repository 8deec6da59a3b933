"""How good is each estimator's step? Cosine to the true gradient per 1,000 image queries, and float32 resolution.

The benchmark's black box is a local model, so the true gradient of the batch loss with respect to the prompter's
parameters is available by autograd (through the target, which training never does). At a fixed point (the
initial prompter, or after ``--warmup`` reference steps) and a fixed batch, each estimator is stepped without moving
until its queries reach ``--budget``; the average of its estimates is compared with the true gradient. Repeated
``--repeats`` times with fresh directions.

The same queries are also answered by a float64 copy of the target and loss: the relative change of the estimate
says whether float32 round-off matters, and the loss differences the slopes are built from are reported in units of
the float32 spacing (ulp) of the loss.

    python -m bench.efficiency_diagnostic [--task lenet] [--budget 1000] [--repeats 10] [--warmup 0]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os.path as osp
import statistics
import tempfile

import numpy as np
import torch
from tabulate import tabulate

from bench.efficiency import REPO, RESULTS, TASKS, VARIANTS, Variant
from bench.harness import write_json

DIAGNOSED = ["reference", "one-sided", "k1", "orthogonal", "clip-sqrt-d", "subspace", "history", "per-image"]
PIXEL = Variant(
    "per-image-pixel",
    "per-image, all-pixel basis",
    60,
    ("TRAINER.BLACKVIP.PROMPT_BASIS", "pixel"),
    config="blackvip_efficient",
)


def build(task: str, variant: Variant, seed: int, data: str, trainer: str = "BLACKVIP", config: str | None = None):
    import train
    from dassl.engine import build_trainer
    from dassl.utils import set_random_seed

    train.load_plugins()
    set_random_seed(seed)
    argv = [
        "--root", data, "--seed", str(seed), "--trainer", trainer,
        "--dataset-config-file", osp.join(REPO, "configs/quickstart/task.yaml"),
        "--config-file", osp.join(REPO, f"configs/quickstart/{config or variant.config}.yaml"),
        "--output-dir", tempfile.mkdtemp(prefix="bench-diag-"),
        "OPTIM.MAX_EPOCH", str(variant.epochs),
        *[json.dumps(o) if isinstance(o, list) else str(o) for o in (*TASKS[task].opts, *variant.opts)],
    ]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        return build_trainer(train.setup_cfg(train.parse_args(argv)))


def float64_logits(target, images: torch.Tensor) -> torch.Tensor:
    """The target's logits computed in float64 (its model and label map converted)."""
    if not hasattr(target, "_model64"):
        target._model64 = copy.deepcopy(target._model).double()
        label_map = copy.deepcopy(target._label_map)
        target._map64 = label_map.double() if isinstance(label_map, torch.nn.Module) else label_map
    x = target._prepare(images).double()
    return target._map64(target._model64(x))


class Oracles:
    """The trainer's loss oracles at one batch, in float32 (the target as trained) or float64; records the loss
    differences the slopes are built from."""

    def __init__(self, trainer, images, labels, ctx, precision: str):
        self.t, self.images, self.labels, self.ctx, self.precision = trainer, images, labels, ctx, precision
        self.gaps: list[float] = []

    def _logits(self, images):
        if self.precision == "fp64":
            return float64_logits(self.t.target, images)
        return self.t.target(images, split="train").float()

    def _loss(self, logits, labels):
        if self.precision != "fp64":
            return self.t.loss(logits, labels)
        log_p = torch.log_softmax(logits.double(), dim=1).gather(1, labels[:, None]).squeeze(1)
        if self.t.cfg.TRAINER.NAME == "BAR":  # focal loss, as trainers.methods.losses.focal_loss, in float64
            return -((1.0 - log_p.exp()) ** float(self.t.cfg.TRAINER.BAR.FOCAL_G)) * log_p
        return -log_p

    def params(self, W):
        n = self.labels.shape[0]
        logits = self._logits(self.t.prompter.apply_many(self.ctx, W))
        losses = self._loss(logits, self.labels.repeat(W.shape[0])).view(W.shape[0], n).mean(1)
        self._record(losses.double().unsqueeze(1))
        return losses.float()

    def images_(self, prompts):
        q, n = prompts.shape[:2]
        logits = self._logits(self.t.prompter.render_prompts(self.ctx, prompts))
        losses = self._loss(logits, self.labels.repeat(q)).view(q, n)
        self._record(losses.double())
        return losses.float()

    def _record(self, losses):
        """Differences to the first point (one-sided) or within pairs (two-sided), in float32 ulps of the loss."""
        zo = self.t.zo
        inner = getattr(zo, "inner", zo)
        if getattr(inner, "one_sided", True):
            diffs, base = losses[1:] - losses[0], losses[0].expand_as(losses[1:])
        else:
            pairs = losses.view(-1, 2, losses.shape[1])
            diffs, base = pairs[:, 0] - pairs[:, 1], pairs[:, 1]
        ulp = np.spacing(base.float().cpu().numpy().astype(np.float32)).astype(np.float64)
        self.gaps.extend((diffs.abs().cpu().numpy() / ulp).ravel().tolist())


def true_gradient(trainer, ctx, labels, w):
    leaf = w.clone().requires_grad_(True)
    with torch.enable_grad():
        if trainer.prompter.supports_prompt_space:
            images = trainer.prompter.render(ctx.x, trainer.prompter.prompts(ctx, leaf))
        else:  # BAR's program: the canvas (ctx) with the program added in its frame
            size = trainer.prompter.frame_size
            images = trainer.prompter._finish(ctx.unsqueeze(0), leaf.reshape(1, 1, 3, size, size)).flatten(0, 1)
        logits = trainer.target.logits_with_input_grad(images).float()
        loss = trainer.loss(logits, labels).mean()
        (grad,) = torch.autograd.grad(loss, leaf)
    return grad


def estimate(trainer, oracles: Oracles, w, budget: int, seed_state) -> tuple[torch.Tensor, int]:
    """Mean of the estimator's steps at ``w`` (not moving) until ``budget`` queries are spent."""
    zo = trainer.zo
    zo.load_state_dict(seed_state)
    total, used, steps = torch.zeros_like(w), 0, 0
    n = oracles.labels.shape[0]
    while used < budget:
        if zo.per_image:
            step = zo.step_prompts(w, lambda v: trainer.prompter.prompts(oracles.ctx, v), oracles.images_)
        else:
            step = zo.step(w, oracles.params)
        if hasattr(zo, "z"):  # a subspace optimiser: stay at w
            zo.z.zero_()
        total += step.grad
        used += zo.queries_per_step * n
        steps += 1
    return total / steps, used


def diagnose(
    task: str,
    name: str,
    variant: Variant,
    data: str,
    budget: int,
    repeats: int,
    warmup: int,
    trainer_name="BLACKVIP",
    config=None,
) -> dict:
    trainer = build(task, variant, 1, data, trainer_name, config)
    trainer.set_model_mode("train")
    batch = next(iter(trainer.train_loader_x))
    images, labels = trainer.parse_batch_train(batch)
    if warmup:
        reference = build(task, VARIANTS["reference"], 1, data)
        reference.set_model_mode("train")
        reference.feature_cache = None  # before_train (which builds it) is not run here
        loader = iter(reference.train_loader_x)
        for _ in range(warmup):
            b = next(loader, None)
            if b is None:
                loader = iter(reference.train_loader_x)
                b = next(loader)
            with contextlib.redirect_stdout(io.StringIO()):
                reference.forward_backward(b)
        trainer.prompter.load_state_dict(reference.prompter.state_dict())
    with torch.no_grad():
        ctx = trainer.prompter.prepare(images)
    w = trainer.prompter.get_flat()
    g_true = true_gradient(trainer, ctx, labels, w)
    cosines, single, rel64 = [], [], []
    o32, o64 = Oracles(trainer, images, labels, ctx, "fp32"), Oracles(trainer, images, labels, ctx, "fp64")
    state = trainer.zo.state_dict()
    for _ in range(repeats):
        gen_state = copy.deepcopy(state)
        with torch.no_grad():
            e32, used = estimate(trainer, o32, w, budget, gen_state)
            after = trainer.zo.state_dict()
            e64, _ = estimate(trainer, o64, w, budget, copy.deepcopy(gen_state))
            one, _ = estimate(trainer, Oracles(trainer, images, labels, ctx, "fp32"), w, 1, copy.deepcopy(gen_state))
        cosines.append(torch.nn.functional.cosine_similarity(e32, g_true, dim=0).item())
        single.append(torch.nn.functional.cosine_similarity(one, g_true, dim=0).item())
        rel64.append(((e32 - e64).norm() / e64.norm()).item())
        state = after  # fresh directions next repeat
    gaps = np.asarray(o32.gaps)
    return {
        "task": task,
        "variant": name,
        "detail": variant.detail,
        "queries_per_step": trainer.zo.queries_per_step * labels.shape[0],
        "queries": used,
        "cosine": cosines,
        "cosine_one_step": single,
        "fp64_relative_change": rel64,
        "gap_ulps_median": float(np.median(gaps)),
        "gap_below_16_ulps": float((gaps < 16).mean()),
        "gap_zero": float((gaps == 0).mean()),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["lenet"], choices=list(TASKS))
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=0, help="reference steps taken before measuring")
    parser.add_argument("--data", default=osp.join(REPO, "data", "quickstart"))
    parser.add_argument("--out", default=osp.join(osp.dirname(RESULTS), "efficiency_diagnostic.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows, results = [], []
    for task in args.tasks:
        jobs = [(n, VARIANTS[n], "BLACKVIP", None) for n in DIAGNOSED] + [("per-image-pixel", PIXEL, "BLACKVIP", None)]
        jobs.append(("bar", Variant("bar", "BAR (RGF, smoothing 0.01)", 120, config="bar"), "BAR", "bar"))
        for name, variant, trainer_name, config in jobs:
            res = diagnose(task, name, variant, args.data, args.budget, args.repeats, args.warmup, trainer_name, config)
            results.append(res)
            mean = statistics.mean
            rows.append([
                task, res["detail"], res["queries_per_step"], res["queries"],
                f"{mean(res['cosine']):.3f} ± {statistics.stdev(res['cosine']):.3f}",
                f"{mean(res['cosine_one_step']):.3f}",
                f"{res['gap_ulps_median']:.0f}", f"{100 * res['gap_below_16_ulps']:.1f}%",
                f"{mean(res['fp64_relative_change']):.2g}",
            ])  # fmt: skip
            print(rows[-1], flush=True)
    headers = [
        "task",
        "estimator",
        "queries/step",
        "queries used",
        f"cosine to true gradient (per ~{args.budget:,})",
        "cosine, one step",
        "loss gap (median, float32 ulps)",
        "gaps < 16 ulps",
        "estimate change in float64",
    ]
    print(tabulate(rows, headers=headers, disable_numparse=True, tablefmt="github"))
    write_json({"budget": args.budget, "repeats": args.repeats, "warmup": args.warmup, "results": results}, args.out)


if __name__ == "__main__":
    main()
