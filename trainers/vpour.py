"""VPOUR ("VP w/ SPSA-GC"): the VP pad prompt trained by SPSA-GC through the black-box target, in fp32."""

from __future__ import annotations

import torch

from dassl.config import CfgNode
from dassl.engine import TRAINER_REGISTRY
from trainers.config import ConfigKey, declare_keys
from trainers.methods import BlackBoxTrainer
from trainers.methods.losses import cross_entropy
from trainers.prompters import prompter_names
from trainers.zo import zo_names

KEYS = declare_keys(
    "TRAINER.VPOUR",
    ConfigKey("METHOD", "padding", "prompt design (a registered prompter)", choices=prompter_names),
    ConfigKey("IMAGE_SIZE", 224, "side of the prompted image in pixels (must equal INPUT.SIZE)"),
    ConfigKey("PROMPT_SIZE", 30, "width of the pad prompt in pixels"),
    ConfigKey(
        "SPSA_PARAMS",
        [0.0, 0.001, 40.0, 0.6, 0.1],
        "SPSA gains [o, c, a, alpha, gamma]: a_k=a/(k+o)^alpha, c_k=c/k^gamma",
    ),
    ConfigKey("OPT_TYPE", "spsa-gc", "zeroth-order optimiser (a registered one)", choices=zo_names),
    ConfigKey("MOMS", 0.9, "SPSA-GC momentum coefficient"),
    ConfigKey("SP_AVG", 5, "perturbation directions averaged per step (2 x SP_AVG queries per image)"),
    ConfigKey("ONE_SIDED", False, "one-sided SPSA: SP_AVG + 1 queries per image instead of 2 x SP_AVG"),
    ConfigKey("CLIP_NORM", 0.0, "clip the gradient estimate to this L2 norm (0 = off)"),
)


@TRAINER_REGISTRY.register()
class VPOUR(BlackBoxTrainer):
    """Pad 30 on 224 (69,840 learnable), SPSA-GC with 5 perturbations; no autocast (the reference's fixed version)."""

    label = "VP w/ SPSA-GC"
    script_family = "vpour"
    table_order = 40
    checkpoint_name = "prompter"

    def check_cfg(self, cfg: CfgNode) -> None:
        super().check_cfg(cfg)
        c = cfg.TRAINER.VPOUR
        if tuple(cfg.INPUT.SIZE) != (c.IMAGE_SIZE, c.IMAGE_SIZE):
            raise ValueError(
                f"TRAINER.VPOUR.IMAGE_SIZE {c.IMAGE_SIZE} must equal INPUT.SIZE {tuple(cfg.INPUT.SIZE)}: the prompt "
                f"is added to the input images. Set both to the same side."
            )

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return cross_entropy(logits, labels)
