"""``PromptedTargetTrainer``: a learnable prompter in front of a frozen target, with the target's queries accounted."""

from __future__ import annotations

import torch

from dassl.engine import TrainerX
from trainers.targets import Target, build_target


class PromptedTargetTrainer(TrainerX):
    """Shared by white- and black-box prompting: builds the target, evaluates ``target(prompter(x))`` and
    keeps the query counts in checkpoints, the log and ``results.json``. Subclasses set ``self.prompter``."""

    prompter: torch.nn.Module

    def build_target(self) -> Target:
        self.target = build_target(self.cfg, self.dm.dataset.classnames, self.device)
        print(f"Target: {self.target.describe()}")
        return self.target

    def model_inference(self, images: torch.Tensor) -> torch.Tensor:
        return self.target(self.prompter(images), split=getattr(self, "eval_split", "test"))

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
