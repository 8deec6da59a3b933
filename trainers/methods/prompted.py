"""``PromptedTargetTrainer``: a learnable prompter in front of a frozen target, with the target's queries accounted."""

from __future__ import annotations

import json
import os.path as osp
from collections import OrderedDict
from typing import ClassVar

import torch

from dassl.config import CfgNode
from dassl.engine import StopTraining, TrainerX
from dassl.utils import capture_rng_state, distributed, restore_rng_state, write_json
from dassl.utils.scalars import query_scalars
from trainers.config import validate_cfg
from trainers.prompters import Prompter
from trainers.targets import BudgetExceeded, Target, build_target

from .prompt_grid import GRID_IMAGES, PROMPT_GRID_FILE, prompt_grid

QUERY_LEDGER = "queries.json"
"""Query counts as of the latest checkpoint or evaluation, so a resumed run keeps its earlier attempts' evaluations."""

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
    access: ClassVar[str] = "black-box"
    """What results.json records: "black-box" when the target is only queried, "white-box" when gradients flow
    through it."""
    prompter: Prompter
    _test_index: torch.Tensor | None = None
    """The dataset indices of the evaluation batch being parsed, for prompters that place prompts per image."""

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

    def parse_batch_test(self, batch: dict):
        self._test_index = batch.get("index")
        return super().parse_batch_test(batch)

    def model_inference(self, images: torch.Tensor) -> torch.Tensor:
        index, self._test_index = self._test_index, None
        return self.target(self.prompter.prompt_indexed(images, index), split=self.eval_split)

    def extra_checkpoint_state(self) -> dict:
        state = {"queries": self.target.counter.state_dict()}
        if hasattr(self.target, "retries"):
            state["retries"] = int(self.target.retries)
        return state

    def load_extra_checkpoint_state(self, state: dict) -> None:
        """Counts as of the checkpoint, plus the evaluation queries earlier attempts sent after it (they are not
        sent again, unlike training steps, so only the ledger knows them)."""
        if "retries" in state and hasattr(self.target, "retries"):
            self.target.retries = int(state["retries"])
        if "queries" not in state:
            return
        counts = {key: dict(value) for key, value in state["queries"].items()}
        ledger = self._read_ledger()
        for key in ("images", "calls"):
            for split, value in ledger.get(key, {}).items():
                if split != "train":
                    counts[key][split] = max(int(value), int(counts[key].get(split, 0)))
        self.target.counter.load_state_dict(counts)

    @property
    def ledger_path(self) -> str:
        return osp.join(self.output_dir, QUERY_LEDGER)

    def _read_ledger(self) -> dict:
        try:
            with open(self.ledger_path) as f:
                data = json.load(f)
            return data if isinstance(data, dict) else {}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            print(
                f"Warning: {self.ledger_path} is unreadable ({e}); evaluation queries of earlier attempts are not added"
            )
            return {}

    def write_ledger(self) -> None:
        """Record the counts in ``OUTPUT_DIR/queries.json`` (after every checkpoint and evaluation; rank 0 only)."""
        if distributed.is_writer():
            write_json(self.target.counter.state_dict(), self.ledger_path)

    def save_model(self, *args, **kwargs) -> str:
        path = super().save_model(*args, **kwargs)
        self.write_ledger()
        return path

    def progress_scalars(self) -> dict[str, float]:
        counter = self.target.counter
        return query_scalars(counter.images(), counter.usd_per_1k)

    def after_train(self) -> None:
        line = self.target.counter.summary_line()
        if hasattr(self.target, "retries"):
            line += f"; {self.target.retries} requests resent after a failure (not billed)"
        print(line)
        super().after_train()
        if distributed.is_writer():
            self.save_prompt_grid()

    @torch.no_grad()
    def save_prompt_grid(self, count: int = GRID_IMAGES) -> str:
        """Write ``OUTPUT_DIR/prompt_grid.png``: the first ``count`` test images, the prompt and the prompted
        images, as evaluation renders them. Nothing is sent to the target. Returns the path."""
        dataset = self.test_loader.dataset
        items = [dataset[i] for i in range(min(count, len(dataset)))]
        images = torch.stack([item["img"] for item in items]).to(self.device)
        index = torch.tensor([item["index"] for item in items])
        self.set_model_mode("eval")
        prompted = self.prompter.prompt_indexed(images, index)
        normalised = "normalize" in self.cfg.INPUT.TRANSFORMS
        mean, std = (self.cfg.INPUT.PIXEL_MEAN, self.cfg.INPUT.PIXEL_STD) if normalised else (None, None)
        path = osp.join(self.output_dir, PROMPT_GRID_FILE)
        prompt_grid(images, prompted, mean, std).save(path)
        print(f"Prompt grid (input | prompt | prompted input, {len(items)} test images) saved to {path}")
        return path

    def run_info(self) -> dict:
        info = super().run_info()
        info.update(
            {
                "learnable_parameters": self.prompter.num_learnable(),
                "stopped_by": self.stopped_by,
                "access": self.access,
            }
            | self.target.accounting()
        )
        return info

    # --- query plan and budget

    def images_per_sample(self) -> int:
        """Target images one training image costs per step (1 here; K perturbations cost more)."""
        return 1

    def train_batch_sizes(self) -> list[int]:
        """The size of every training batch of one epoch, in order."""
        loader = self.train_loader_x
        full, rest = divmod(len(loader.sampler), loader.batch_size)
        return [loader.batch_size] * full + ([] if loader.drop_last or rest == 0 else [rest])

    def validates_each_epoch(self) -> bool:
        return not self.cfg.TEST.NO_TEST and self.cfg.TEST.FINAL_MODEL == "best_val" and self.val_loader is not None

    def next_images(self, epoch: int, batches_done: int) -> int:
        """Images the run sends next, after ``batches_done`` steps of epoch ``epoch`` (0-based): the next step, and
        the validation that ends an epoch."""
        sizes = self.train_batch_sizes()
        if batches_done < len(sizes):
            return sizes[batches_done] * self.images_per_sample()
        images = len(self.val_loader.dataset) if self.validates_each_epoch() else 0
        if epoch + 1 < self.max_epoch:
            images += sizes[0] * self.images_per_sample()
        return images

    def print_query_plan(self) -> None:
        """The queries of the full schedule (and their cost), and what the budget allows; reserves the final test."""
        per_epoch = sum(self.train_batch_sizes()) * self.images_per_sample()
        val = len(self.val_loader.dataset) if self.validates_each_epoch() else 0
        test = 0 if self.cfg.TEST.NO_TEST else len(self.test_loader.dataset)
        total = self.max_epoch * (per_epoch + val) + test
        counter, budget = self.target.counter, self.target.budget
        line = f"Planned target queries: {self.max_epoch} epochs x ({per_epoch} train"
        line += f" + {val} val)" if val else ")"
        line += f" + {test} test = {total} images"
        if counter.usd_per_1k > 0:
            line += f" (USD {total / 1000 * counter.usd_per_1k:.2f} at {counter.usd_per_1k} per 1k images)"
        print(line)
        if not budget.limited:
            return
        budget.reserved = {"test": counter.images("test") + test}
        print(
            f"Query budget: {budget.source}; {counter.images()} already sent, {test} reserved for the final test"
            + (
                ""
                if total + counter.images() <= budget.images
                else "; training stops before the step that would exceed it"
            )
        )

    def before_train(self) -> None:
        super().before_train()
        self.print_query_plan()
        if not self.target.budget.limited or self.start_epoch >= self.max_epoch:
            return
        skip = self._resume_position[0]
        needed = (
            self.next_images(self.start_epoch, skip) if skip else self.train_batch_sizes()[0] * self.images_per_sample()
        )
        if not self.target.budget.fits(self.target.counter, "train", needed):
            raise BudgetExceeded(
                f"The query budget ({self.target.budget.source}) leaves {self.target.budget.available(self.target.counter, 'train')} "
                f"images for training after the final test's reserve, and the next step needs {needed}. Nothing was "
                f"sent. Raise the budget and run the same command to continue."
            )

    def after_step(self, batches_done: int, epoch_rng_state: dict) -> None:
        super().after_step(batches_done, epoch_rng_state)
        budget = self.target.budget
        if not budget.limited:
            return
        needed = self.next_images(self.epoch, batches_done)
        if needed and not budget.fits(self.target.counter, "train", needed):
            path = self.save_model(self.epoch, self.output_dir, batches=batches_done, epoch_rng_state=epoch_rng_state)
            raise StopTraining(
                "budget",
                f"the query budget ({budget.source}) does not cover the next {needed} images "
                f"({self.target.counter.images()} sent, {budget.available(self.target.counter, 'train')} left before "
                f"the final test's reserve); checkpoint {path}. Raise the budget and run the same command to continue.",
            )

    def test(self, split: str | None = None) -> float:
        split = split or self.cfg.TEST.SPLIT
        loader = self.val_loader if split == "val" and self.val_loader is not None else self.test_loader
        self.target.budget.check(
            self.target.counter, "val" if loader is self.val_loader else "test", len(loader.dataset)
        )
        if distributed.world_size() > 1:
            return self._test_on_writer(split)
        return self._evaluate(split)

    def _test_on_writer(self, split: str) -> float:
        """With several processes rank 0 alone evaluates, so the evaluation set is sent once; the others take its
        result, its query counts and its RNG state (iterating a data loader draws from it), and stay in step."""

        def evaluate() -> tuple[float, OrderedDict | None, str, dict, dict]:
            result = self._evaluate(split)
            return result, self.test_results, self.eval_split, self.target.counter.state_dict(), capture_rng_state()

        result, self.test_results, self.eval_split, counts, rng = distributed.writer_decides(evaluate)
        if not distributed.is_writer():
            self.target.counter.load_state_dict(counts)
            restore_rng_state(rng)
        return result

    def _evaluate(self, split: str) -> float:
        """Evaluate here and record the counts."""
        result = super().test(split)
        self.write_ledger()
        return result
