"""ZeroshotCLIP: the target as it is, with no prompt (evaluation only)."""

from __future__ import annotations

import torch

from dassl.config import CfgNode
from dassl.engine import TRAINER_REGISTRY, TrainerX
from trainers.config import validate_cfg
from trainers.targets import build_target


@TRAINER_REGISTRY.register()
class ZeroshotCLIP(TrainerX):
    """Zero-shot accuracy of the configured target (CLIP with the dataset's template, or a label-mapped classifier)."""

    label = "ZS CLIP"
    script_family = "zsclip"
    table_order = 20

    def check_cfg(self, cfg: CfgNode) -> None:
        validate_cfg(cfg)

    def build_model(self) -> None:
        self.target = build_target(self.cfg, self.dm.dataset.classnames, self.device)
        print(f"Target: {self.target.describe()}")
        print("Learnable parameters: 0")

    def train(self) -> None:
        """Nothing to learn: evaluate directly, as ``--eval-only`` would."""
        print("ZeroshotCLIP has nothing to train; evaluating")
        self.test()

    def test(self, split=None) -> float:
        on_val = (split or self.cfg.TEST.SPLIT) == "val" and self.val_loader is not None
        loader = self.val_loader if on_val else self.test_loader
        self.target.budget.check(self.target.counter, "val" if on_val else "test", len(loader.dataset))
        result = super().test(split)
        print(self.target.counter.summary_line())
        return result

    def model_inference(self, images: torch.Tensor) -> torch.Tensor:
        return self.target(images, split=self.eval_split)

    def run_info(self) -> dict:
        return {"learnable_parameters": 0, "train_time_s": 0.0, "access": "black-box", **self.target.accounting()}
