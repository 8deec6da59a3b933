"""Shared machinery of the black-box trainers: a prompter trained by a zeroth-order optimiser against a target.

One training step: the prompter's parameter-independent work runs once (``prepare``: the frozen encoder),
the optimiser asks for the losses of all its perturbed parameter vectors at once, and every perturbed
prompted image goes to the target in as few calls as ``TARGET.MAX_BATCH`` allows. No autograd graph is
built and the target is reached only through its query interface.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from trainers.prompted import PromptedTargetTrainer
from trainers.prompters import Prompter
from trainers.targets import Target

# Consecutive steps with a non-finite loss after which training stops.
MAX_NONFINITE_STEPS = 10

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def perturbed_losses(
    prompter: Prompter, ctx, W: torch.Tensor, target: Target, labels: torch.Tensor, loss_fn: LossFn, max_batch: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss of each parameter vector in ``W`` on one mini-batch, plus the correct-prediction count per vector.

    Rows of ``W`` are evaluated in order, in groups of as many vectors as ``max_batch`` images allow
    (all of them in one target call when ``max_batch`` is 0 or large enough).
    """
    num_points, n = W.shape[0], labels.shape[0]
    group = num_points if max_batch <= 0 else max(1, max_batch // n)
    losses, correct = [], []
    for start in range(0, num_points, group):
        chunk = W[start : start + group]
        logits = target(prompter.apply_many(ctx, chunk), split="train").float()
        rep_labels = labels.repeat(chunk.shape[0])
        losses.append(loss_fn(logits, rep_labels).view(chunk.shape[0], n).mean(1))
        correct.append(logits.argmax(1).eq(rep_labels).view(chunk.shape[0], n).sum(1))
    return torch.cat(losses), torch.cat(correct)


class BlackBoxTrainer(PromptedTargetTrainer):
    """Base for BLACKVIP, VPOUR and BAR: subclasses build the prompter, the optimiser and choose the loss."""

    model_name = "prompter"

    def build_prompter(self) -> Prompter:
        raise NotImplementedError

    def build_zo_optimizer(self, dim: int):
        raise NotImplementedError

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
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
        self.register_model(self.model_name, self.prompter, self.zo, None)
        print(f"Learnable parameters: {self.prompter.num_learnable()}")
        print(f"Target queries per step: {self.zo.queries_per_step} x batch")
        self._gain = 0.0
        self._nonfinite_streak = 0

    def forward_backward(self, batch: dict) -> dict:
        images, labels = self.parse_batch_train(batch)
        with torch.no_grad(), self.train_autocast():
            ctx = self.prepare_batch(batch, images)
            stats = {}

            def oracle(W: torch.Tensor) -> torch.Tensor:
                losses, correct = perturbed_losses(
                    self.prompter, ctx, W.to(self.device), self.target, labels, self.loss, self.target.max_batch
                )
                stats["correct"] = correct
                return losses

            step = self.zo.step(self.prompter.get_flat().to(self.device), oracle)
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
