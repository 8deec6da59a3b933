"""Shared machinery of the black-box trainers: a prompter trained by a zeroth-order optimiser against a target.

One training step: the prompter's parameter-independent work runs once (``prepare``: the frozen encoder),
the optimiser asks for the losses of all its perturbed parameter vectors at once, and every perturbed
prompted image goes to the target in as few calls as ``TARGET.MAX_BATCH`` allows. No autograd graph is
built and the target is reached only through its query interface.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch

from dassl.engine.trainer import StopTraining
from trainers.config import ConfigError
from trainers.distributed import PointShards
from trainers.prompters import Prompter, build_prompter
from trainers.targets import Target
from trainers.zo import ZOOptimizer, build_zo

from .plateau import Plateau
from .prompted import PromptedTargetTrainer

# Consecutive steps with a non-finite loss after which training stops.
MAX_NONFINITE_STEPS = 10

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def perturbed_losses(
    prompter: Prompter,
    ctx: Any,
    W: torch.Tensor,
    target: Target,
    labels: torch.Tensor,
    loss_fn: LossFn,
    points: range | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss of each parameter vector in ``W`` on one mini-batch, plus the correct-prediction count per vector.

    All P x N prompted images form one request; the target alone decides how it is split into calls
    (``ceil(P*N / TARGET.MAX_BATCH)``, images packed across parameter vectors). With ``points`` (this process's
    share under torchrun) the prompter still renders every vector, so its state (e.g. the coordinator's batch-norm
    statistics) advances as in one process, but only those vectors' images are sent and answered.
    """
    n = labels.shape[0]
    images = prompter.apply_many(ctx, W)
    if points is not None:
        images = images[points.start * n : points.stop * n]
    losses, correct = _scored(target, images, labels, loss_fn)
    return losses.mean(1), correct


def _scored(
    target: Target, images: torch.Tensor, labels: torch.Tensor, loss_fn: LossFn
) -> tuple[torch.Tensor, torch.Tensor]:
    """One request for P sets of the batch's prompted images (P*N, set by set): each image's loss, shape (P, N),
    and the correct predictions per set, shape (P,)."""
    n = labels.shape[0]
    num_points = images.shape[0] // n
    logits = target(images, split="train").float()
    rep_labels = labels.repeat(num_points)
    losses = loss_fn(logits, rep_labels).view(num_points, n)
    correct = logits.argmax(1).eq(rep_labels).view(num_points, n).sum(1)
    return losses, correct


def per_image_losses(
    prompter: Prompter, ctx: Any, prompts: torch.Tensor, target: Target, labels: torch.Tensor, loss_fn: LossFn
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image's loss under each of Q prompt sets (Q, N, C, H, W): shape (Q, N), plus the correct count per set.

    All Q x N prompted images form one request, split into calls by ``TARGET.MAX_BATCH`` as in ``perturbed_losses``.
    """
    return _scored(target, prompter.render_prompts(ctx, prompts), labels, loss_fn)


class BlackBoxTrainer(PromptedTargetTrainer):
    """Base for BLACKVIP, VPOUR and BAR: a registered prompter (``METHOD``) trained by a registered zeroth-order
    optimiser (``OPT_TYPE``, or ``zo_name``) against the target; subclasses choose the loss."""

    zo_name: str | None = None
    """The optimiser this method always uses; None reads the node's ``OPT_TYPE``."""

    splits_work_over_processes = True
    """Under ``torchrun --nproc_per_node N`` each process sends its share of every step's perturbed points."""

    def build_prompter(self) -> Prompter:
        return build_prompter(self.method_node.METHOD, self.cfg, self.method_node)

    def build_zo_optimizer(self, dim: int) -> ZOOptimizer:
        name = self.zo_name or self.method_node.OPT_TYPE
        total = len(self.train_loader_x) * self.cfg.OPTIM.MAX_EPOCH
        return build_zo(name, self.method_node, dim=dim, seed=max(self.cfg.SEED, 0), total_steps=total)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per-example loss on the target's logits."""
        raise NotImplementedError

    def prepare_batch(self, batch: dict, images: torch.Tensor):
        """The prompter's parameter-independent work for this batch (done once per step)."""
        return self.prompter.prepare(images)

    def train_autocast(self) -> contextlib.AbstractContextManager:
        """Precision context for the perturbed passes (fp32 unless a subclass says otherwise)."""
        return contextlib.nullcontext()

    def build_model(self) -> None:
        self.build_target()
        self.prompter = self.build_prompter().to(self.device)
        self.zo = self.build_zo_optimizer(self.prompter.get_flat().numel())
        if self.zo.per_image and not self.prompter.supports_prompt_space:
            raise ConfigError(
                f"OPT_TYPE {self.method_node.OPT_TYPE} estimates each image's prompt gradient and back-propagates it "
                f"through the prompter, which {type(self.prompter).__name__} (METHOD {self.method_node.METHOD}) does "
                f"not support; use a coordinator METHOD, or a parameter-space OPT_TYPE (spsa-gc, spsa)."
            )
        self.register_model(self.checkpoint_name, self.prompter, self.zo, None)
        print(f"Learnable parameters: {self.prompter.num_learnable()}")
        print(f"Target queries per step: {self.zo.queries_per_step} x batch")
        self.shards = PointShards.for_this_process(self.zo.queries_per_step)
        if self.shards is not None and self.zo.per_image:
            raise ConfigError(
                f"OPT_TYPE {self.method_node.OPT_TYPE} runs in one process: its per-image prompt sets are not split "
                f"over torchrun processes. Run it without torchrun."
            )
        if self.shards is not None:
            print(self.shards.describe())
        self._gain = 0.0
        self._nonfinite_streak = 0
        self.plateau = Plateau.from_cfg(self.cfg)
        if self.plateau is not None and self.val_loader is None:
            raise ConfigError(
                f"TRAIN.PLATEAU_EVERY {self.plateau.every} stops on the validation accuracy, but "
                f"{self.cfg.DATASET.NAME} has no validation split here; set TRAIN.PLATEAU_EVERY 0 or use a dataset "
                f"setting with one."
            )

    def extra_checkpoint_state(self) -> dict:
        state = super().extra_checkpoint_state()
        if self.plateau is not None:
            state["plateau"] = self.plateau.state_dict()
        return state

    def load_extra_checkpoint_state(self, state: dict) -> None:
        super().load_extra_checkpoint_state(state)
        if self.plateau is not None and "plateau" in state:
            self.plateau.load_state_dict(state["plateau"])

    def before_train(self) -> None:
        super().before_train()
        if self.plateau is not None and self.plateau.stopped:
            print(f"Training had stopped on a validation plateau at step {self.global_step}; not continuing it")
            self.start_epoch = self.max_epoch
            self.stopped_by = "plateau"

    def validate(self) -> float | None:
        """Validation accuracy (its queries counted under "val"), without disturbing the training's random state;
        None, with a message, when the query budget cannot pay for it."""
        budget, counter = self.target.budget, self.target.counter
        if budget.limited and not budget.fits(counter, "val", len(self.val_loader.dataset)):
            print(
                f"Validation at step {self.global_step} skipped: the query budget ({budget.source}) cannot pay for it"
            )
            return None
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            accuracy = self.test(split="val")
        self.set_model_mode("train")
        return accuracy

    def after_step(self, batches_done: int, epoch_rng_state: dict) -> None:
        plateau = self.plateau
        if plateau is not None and plateau.due(self.global_step):
            accuracy = self.validate()
            if accuracy is not None:
                stop = plateau.update(self.global_step, accuracy, self.prompter)
                print(plateau.describe(self.global_step, accuracy))
                if stop:
                    assert plateau.best_state is not None
                    self.prompter.load_state_dict(plateau.best_state)
                    path = self.save_model(
                        self.epoch, self.output_dir, batches=batches_done, epoch_rng_state=epoch_rng_state
                    )
                    raise StopTraining(
                        "plateau",
                        f"validation accuracy did not improve by more than {plateau.min_delta} points in "
                        f"{plateau.patience} evaluations {plateau.every} steps apart; the best ({plateau.best:.1f}% at "
                        f"step {plateau.best_step}) is deployed; checkpoint {path}",
                    )
        super().after_step(batches_done, epoch_rng_state)

    def after_train(self) -> None:
        plateau = self.plateau
        if plateau is not None and plateau.best_state is not None:
            self.prompter.load_state_dict(plateau.best_state)
            print(
                f"Deploy the prompter with the best validation accuracy ({plateau.best:.1f}% at step "
                f"{plateau.best_step}; {self.target.counter.images('val')} validation queries)"
            )
            if not plateau.stopped and self.epoch == self.max_epoch - 1:
                # the schedule ran out first: the last checkpoint, too, holds what is deployed (a plateau stop has
                # already saved it)
                self.save_model(self.epoch, self.output_dir)
        super().after_train()

    def forward_backward(self, batch: dict) -> dict:
        images, labels = self.parse_batch_train(batch)
        with torch.no_grad(), self.train_autocast():
            ctx = self.prepare_batch(batch, images)
            stats = {}

            def oracle(W: torch.Tensor) -> torch.Tensor:
                W = W.to(self.device)
                if self.shards is None:
                    losses, correct = perturbed_losses(self.prompter, ctx, W, self.target, labels, self.loss)
                else:
                    losses, correct = self.shards.evaluate(
                        lambda mine: perturbed_losses(self.prompter, ctx, W, self.target, labels, self.loss, mine),
                        self.target.counter,
                    )
                stats["correct"] = correct
                return losses

            w = self.prompter.get_flat().to(self.device)
            if self.zo.per_image:

                def image_oracle(prompts: torch.Tensor) -> torch.Tensor:
                    losses, correct = per_image_losses(self.prompter, ctx, prompts, self.target, labels, self.loss)
                    stats["correct"] = correct
                    return losses

                step = self.zo.step_prompts(w, lambda v: self.prompter.prompts(ctx, v), image_oracle)
            else:
                step = self.zo.step(w, oracle)
        self._gain = step.gain
        if step.skipped:
            self._nonfinite_streak += 1
            print(
                f"Non-finite loss from the target at step {self.zo.k + 1}: update skipped "
                f"({self._nonfinite_streak} in a row)"
            )
            if self._nonfinite_streak >= MAX_NONFINITE_STEPS:
                raise FloatingPointError(
                    f"The target returned non-finite losses for {MAX_NONFINITE_STEPS} steps in a row, so training "
                    f"stopped. Lower the gain (SPSA_PARAMS a / BAR LRS), the perturbation scale c or P_EPS, or run "
                    f"the target in fp32 (TARGET.PRECISION fp32)."
                )
        else:
            self._nonfinite_streak = 0
            self.prompter.set_flat(step.w)
        finite = torch.isfinite(step.losses)
        loss = step.losses[finite].mean().item() if finite.any() else float("nan")
        acc = 100.0 * stats["correct"].sum().item() / (labels.shape[0] * stats["correct"].numel())
        return {"loss": loss, "acc": acc, "grad_norm": step.grad.norm().item()}

    def get_current_lr(self, names=None) -> float:
        return self._gain

    def step_scalars(self, loss_summary: dict) -> dict[str, float]:
        """The step's loss, accuracy and gradient-estimate norm, with the optimiser's gain (step size) by name."""
        return super().step_scalars(loss_summary) | {"train/gain": float(self._gain)}

    def images_per_sample(self) -> int:
        return self.zo.queries_per_step

    def parse_batch_train(self, batch: dict):
        return batch["img"].to(self.device), batch["label"].to(self.device)

    def run_info(self) -> dict:
        info = super().run_info()
        info.update({"steps": self.zo.k, "queries_per_step": self.zo.queries_per_step})
        return info


def cuda_fp16_autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """fp16 autocast on CUDA when enabled; a no-op on CPU, where the reference's fp16 training does not apply."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()
