"""VPOUR ("VP w/ SPSA-GC"): the VP pad prompt trained by SPSA-GC through the black-box target, in fp32."""

from __future__ import annotations

from dassl.engine import TRAINER_REGISTRY
from trainers.blackbox import BlackBoxTrainer
from trainers.losses import cross_entropy
from trainers.prompters import PadPrompter
from trainers.zo import SPSA

OPT_TYPES = ("spsa", "spsa-gc")


@TRAINER_REGISTRY.register()
class VPOUR(BlackBoxTrainer):
    """Pad 30 on 224 (69,840 learnable), SPSA-GC with 5 perturbations; no autocast (the reference's fixed version)."""

    model_name = "prompter"

    def check_cfg(self, cfg) -> None:
        c = cfg.TRAINER.VPOUR
        if c.METHOD != "padding":
            raise ValueError(f"TRAINER.VPOUR.METHOD must be 'padding', got {c.METHOD!r}")
        if c.OPT_TYPE not in OPT_TYPES:
            raise ValueError(f"TRAINER.VPOUR.OPT_TYPE must be one of {OPT_TYPES}, got {c.OPT_TYPE!r}")

    def build_prompter(self):
        c = self.cfg.TRAINER.VPOUR
        return PadPrompter(image_size=c.IMAGE_SIZE, pad=c.PROMPT_SIZE)

    def build_zo_optimizer(self, dim: int) -> SPSA:
        c = self.cfg.TRAINER.VPOUR
        return SPSA(
            dim,
            [float(v) for v in c.SPSA_PARAMS],
            sp_avg=c.SP_AVG,
            gc=c.OPT_TYPE == "spsa-gc",
            moms=c.MOMS,
            one_sided=c.ONE_SIDED,
            clip_norm=c.CLIP_NORM,
            seed=max(self.cfg.SEED, 0),
        )

    def loss(self, logits, labels):
        return cross_entropy(logits, labels)
