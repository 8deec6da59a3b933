"""VPWB: white-box visual prompting, the pad prompt trained by back-propagation through the frozen target."""

from __future__ import annotations

import contextlib

import torch

from dassl.config import CfgNode
from dassl.engine import TRAINER_REGISTRY
from dassl.metrics import compute_accuracy
from dassl.optim import build_lr_scheduler, build_optimizer
from trainers.config import ConfigKey, declare_keys
from trainers.methods import PromptedTargetTrainer, check_prompt_fits_input
from trainers.methods.losses import cross_entropy
from trainers.prompters import PAD_KEYS, build_prompter

AMP_CHOICES = ("amp", "fp32")

KEYS = declare_keys(
    "TRAINER.VPWB",
    ConfigKey("PREC", "amp", "training precision: amp = fp16 autocast with loss scaling on CUDA", choices=AMP_CHOICES),
    *PAD_KEYS,
)


@TRAINER_REGISTRY.register()
class VPWB(PromptedTargetTrainer):
    """SGD on the pad prompt (LR 40, warm-up then cosine, stepped per epoch); mixed precision on CUDA with ``PREC amp``."""

    label = "VP (white-box)"
    script_family = "vpwb"
    table_order = 10
    checkpoint_name = "prompter"
    access = "white-box"

    def check_cfg(self, cfg: CfgNode) -> None:
        super().check_cfg(cfg)
        check_prompt_fits_input(cfg, "TRAINER.VPWB")

    def build_model(self) -> None:
        cfg, c = self.cfg, self.method_node
        self.build_target()
        self.prompter = build_prompter(c.METHOD, cfg, c).to(self.device)
        self.optim = build_optimizer(self.prompter, cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, cfg.OPTIM)
        self.register_model(self.checkpoint_name, self.prompter, self.optim, self.sched)
        self.use_amp = c.PREC == "amp" and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if self.use_amp else None
        print(f"Learnable parameters: {self.prompter.num_learnable()}")

    def forward_backward(self, batch: dict) -> dict:
        images, labels = batch["img"].to(self.device), batch["label"].to(self.device)
        autocast = torch.autocast("cuda", dtype=torch.float16) if self.use_amp else contextlib.nullcontext()
        with autocast:
            logits = self.target.logits_with_input_grad(self.prompter(images), split="train")
            loss = cross_entropy(logits, labels).mean()
        self.scaled_backward_and_update(loss, self.scaler, self.optim)
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        return {"loss": loss.item(), "acc": compute_accuracy(logits, labels)[0].item()}
