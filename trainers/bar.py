"""BAR: black-box adversarial reprogramming, a sigmoid frame around the shrunken image trained by RGF on a focal loss."""

from __future__ import annotations

from dassl.engine import TRAINER_REGISTRY
from trainers.blackbox import BlackBoxTrainer
from trainers.losses import focal_loss
from trainers.prompters import Program
from trainers.zo import RGF


@TRAINER_REGISTRY.register()
class BAR(BlackBoxTrainer):
    """The image (``INPUT.SIZE``, 194 in the scripts) sits inside a ``FRAME_SIZE`` canvas; 37,620 effective parameters."""

    model_name = "program"

    def check_cfg(self, cfg) -> None:
        c = cfg.TRAINER.BAR
        if c.METHOD != "reprogramming":
            raise ValueError(f"TRAINER.BAR.METHOD must be 'reprogramming', got {c.METHOD!r}")
        if cfg.INPUT.SIZE[0] > c.FRAME_SIZE:
            raise ValueError(
                f"INPUT.SIZE {tuple(cfg.INPUT.SIZE)} must fit inside TRAINER.BAR.FRAME_SIZE {c.FRAME_SIZE}"
            )
        if len(c.LRS) != 2:
            raise ValueError(f"TRAINER.BAR.LRS must be [init_lr, min_lr], got {c.LRS}")

    def build_prompter(self):
        cfg = self.cfg
        return Program(
            frame_size=cfg.TRAINER.BAR.FRAME_SIZE,
            image_size=cfg.INPUT.SIZE[0],
            mean=cfg.INPUT.PIXEL_MEAN,
            std=cfg.INPUT.PIXEL_STD,
        )

    def build_zo_optimizer(self, dim: int) -> RGF:
        c = self.cfg.TRAINER.BAR
        total = len(self.train_loader_x) * self.cfg.OPTIM.MAX_EPOCH
        return RGF(
            dim,
            sp_avg=c.SP_AVG,
            smooth=c.SMOOTH,
            sigma=c.SIMGA,
            lrs=[float(v) for v in c.LRS],
            total_steps=total,
            seed=max(self.cfg.SEED, 0),
        )

    def loss(self, logits, labels):
        return focal_loss(logits, labels, gamma=self.cfg.TRAINER.BAR.FOCAL_G)
