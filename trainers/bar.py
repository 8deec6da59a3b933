"""BAR: black-box adversarial reprogramming, a sigmoid frame around the shrunken image trained by RGF on a focal loss."""

from __future__ import annotations

import torch

from dassl.config import CfgNode
from dassl.engine import TRAINER_REGISTRY
from trainers.config import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, ConfigKey, declare_keys
from trainers.methods import BlackBoxTrainer
from trainers.methods.losses import focal_loss
from trainers.prompters import prompters_reading

KEYS = declare_keys(
    "TRAINER.BAR",
    ConfigKey(
        "METHOD", "reprogramming", "prompt design (a registered prompter)", choices=prompters_reading("FRAME_SIZE")
    ),
    ConfigKey(
        "LRS", [0.01, 0.0001], "[init_lr, min_lr] of the polynomial (power 0.9) learning-rate decay", valid=POSITIVE
    ),
    ConfigKey(
        "FRAME_SIZE",
        224,
        "side of the reprogramming canvas in pixels; the image (INPUT.SIZE) sits inside",
        valid=AT_LEAST_ONE,
    ),
    ConfigKey("SMOOTH", 0.01, "RGF smoothing: the step beta along each random direction", valid=POSITIVE),
    ConfigKey(
        "SIMGA", 1.0, "(sic, the reference's name) scale of the Gaussian directions before normalising", valid=POSITIVE
    ),
    ConfigKey("SP_AVG", 5, "random directions per step (SP_AVG + 1 queries per image)", valid=AT_LEAST_ONE),
    ConfigKey("FOCAL_G", 2.0, "focal-loss exponent gamma", valid=NON_NEGATIVE),
)


@TRAINER_REGISTRY.register()
class BAR(BlackBoxTrainer):
    """The image (``INPUT.SIZE``, 194 in the scripts) sits inside a ``FRAME_SIZE`` canvas; 37,620 effective parameters."""

    label = "BAR"
    script_family = "bar"
    table_order = 30
    checkpoint_name = "program"
    zo_name = "rgf"

    def check_cfg(self, cfg: CfgNode) -> None:
        super().check_cfg(cfg)
        c = cfg.TRAINER.BAR
        if cfg.INPUT.SIZE[0] > c.FRAME_SIZE:
            raise ValueError(
                f"INPUT.SIZE {tuple(cfg.INPUT.SIZE)} must fit inside TRAINER.BAR.FRAME_SIZE {c.FRAME_SIZE}"
            )
        if len(c.LRS) != 2:
            raise ValueError(f"TRAINER.BAR.LRS must be [init_lr, min_lr], got {c.LRS}")

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return focal_loss(logits, labels, gamma=self.cfg.TRAINER.BAR.FOCAL_G)
