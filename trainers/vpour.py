"""VPOUR ("VP w/ SPSA-GC"): the VP pad prompt trained by SPSA-GC through the black-box target, in fp32."""

from __future__ import annotations

import torch

from dassl.config import CfgNode
from dassl.engine import TRAINER_REGISTRY
from trainers.config import declare_keys
from trainers.methods import BlackBoxTrainer, check_prompt_fits_input
from trainers.methods.losses import cross_entropy
from trainers.prompters import PAD_KEYS
from trainers.zo import SPSA_KEYS

KEYS = declare_keys(
    "TRAINER.VPOUR",
    *PAD_KEYS,
    *SPSA_KEYS,
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
        check_prompt_fits_input(cfg, "TRAINER.VPOUR")

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return cross_entropy(logits, labels)
