"""``PromptedTargetTrainer``: a learnable prompter in front of a frozen target, with the target's queries accounted."""

from __future__ import annotations

from typing import ClassVar

import torch

from dassl.config import CfgNode
from dassl.engine import TrainerX
from trainers.config import validate_cfg
from trainers.prompters import Prompter
from trainers.targets import Target, build_target

DEFAULT_TABLE_ORDER = 100
"""Table row of a method that does not set ``table_order``: after the paper's methods."""


class PromptedTargetTrainer(TrainerX):
    """Shared by white- and black-box prompting: builds the target, evaluates ``target(prompter(x))`` and
    keeps the query counts in checkpoints, the log and ``results.json``. Subclasses set ``self.prompter``.

    Class attributes a method sets: ``label`` (its name in tables), ``script_family`` (its ``scripts/`` folder),
    ``table_order`` (its row), ``checkpoint_name`` (the folder under OUTPUT_DIR holding its checkpoints).
    """

    label: ClassVar[str] = ""
    script_family: ClassVar[str | None] = None
    table_order: ClassVar[int] = DEFAULT_TABLE_ORDER
    checkpoint_name: ClassVar[str] = "prompter"
    prompter: Prompter

    @property
    def method_node(self) -> CfgNode:
        """This method's config node, ``TRAINER.<registered name>``."""
        return self.cfg.TRAINER[type(self).__name__]

    def check_cfg(self, cfg: CfgNode) -> None:
        """Allowed values of every declared key, then the method's own cross-key checks."""
        validate_cfg(cfg)

    def build_target(self) -> Target:
        self.target = build_target(self.cfg, self.dm.dataset.classnames, self.device)
        print(f"Target: {self.target.describe()}")
        return self.target

    def model_inference(self, images: torch.Tensor) -> torch.Tensor:
        return self.target(self.prompter(images), split=self.eval_split)

    def extra_checkpoint_state(self) -> dict:
        return {"queries": self.target.counter.state_dict()}

    def load_extra_checkpoint_state(self, state: dict) -> None:
        if "queries" in state:
            self.target.counter.load_state_dict(state["queries"])

    def after_train(self) -> None:
        print(self.target.counter.summary_line())
        super().after_train()

    def run_info(self) -> dict:
        info = super().run_info()
        info.update({"learnable_parameters": self.prompter.num_learnable(), "queries": self.target.counter.as_dict()})
        return info
