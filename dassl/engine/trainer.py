"""Trainer base classes with Dassl's lifecycle and hooks: register models, train epochs, checkpoint, test."""

from __future__ import annotations

import copy
import datetime
import os
import os.path as osp
import signal
import threading
import time
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from dassl.data import DataManager
from dassl.evaluation import build_evaluator
from dassl.utils import (
    AverageMeter,
    MetricMeter,
    capture_rng_state,
    checkpoint_position,
    distributed,
    load_checkpoint,
    load_resume_checkpoint,
    restore_checkpoint,
    restore_rng_state,
    save_checkpoint,
    tolist_if_not,
)
from dassl.utils.scalars import QUERIES_TAG, ScalarSink, TensorBoardSink

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
"""Signals that stop training cleanly: checkpoint after the current step, then exit (SLURM and ``timeout`` send
SIGTERM; SLURM's ``--signal`` sends SIGUSR1 before a time limit)."""

ROLLING_CHECKPOINTS_KEPT = 2
"""Time- and signal-triggered checkpoints (``model.pth.tar-E+B``) kept per model: the newest and one fallback."""


class TrainingStopped(Exception):
    """Training stopped after checkpointing (a stop signal, or a ``ResumableError``); the same command resumes it
    exactly. ``exit_code`` is what the process should exit with."""

    def __init__(self, checkpoint: str, why: str, exit_code: int) -> None:
        self.exit_code = exit_code
        super().__init__(f"Stopped {why} after saving {checkpoint}; run the same command to resume.")

    @classmethod
    def on_signal(cls, signum: int, checkpoint: str) -> TrainingStopped:
        return cls(checkpoint, f"on {signal.Signals(signum).name}", 128 + signum)


class ResumableError(RuntimeError):
    """A step failed for a reason outside the run (e.g. an endpoint that stays down). The trainer checkpoints the
    state from before that step and stops, so the run resumes exactly once the cause is gone."""


EX_TEMPFAIL = 75
"""Exit status of a run stopped by a ``ResumableError`` (sysexits' "temporary failure; try again later")."""


class StopTraining(Exception):
    """Raised by a trainer to end training early by its own rule (e.g. a query budget): the run still evaluates and
    writes its results, with ``reason`` recorded as ``stopped_by``."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def _latest_checkpoint(fdir: str) -> str:
    with open(osp.join(fdir, "checkpoint")) as f:
        return osp.join(fdir, f.readline().strip("\n"))


class TrainerBase:
    """Registration and bookkeeping of models, optimisers and schedulers, plus the generic epoch loop.

    Under ``torchrun`` with several processes only rank 0 writes (checkpoints, scalars); stop signals and
    time-based checkpoints are agreed on by all processes after each step.
    """

    splits_work_over_processes: bool = False
    """True for trainers that divide each step's work over the processes of a ``torchrun`` run; train.py refuses
    to start any other trainer in more than one process, where it would only repeat the same work."""

    def __init__(self) -> None:
        self._models: OrderedDict[str, nn.Module] = OrderedDict()
        self._optims: OrderedDict[str, Any] = OrderedDict()
        self._scheds: OrderedDict[str, Any] = OrderedDict()
        self._sinks: list[ScalarSink] = []
        self.global_step = 0
        """Training steps done over all epochs: the step scalars and evaluations are written at."""
        self.train_seconds = 0.0
        self.wall_offset = 0.0
        self.attempt_start = self._epoch_start = time.time()
        self.best_result = -np.inf
        self.stop_signal: int | None = None
        self.stopped_by: str | None = None
        self.run_fingerprint = ""
        """Digest of what determines the run's result (set by train.py), stored in every checkpoint."""
        self._resume_position: tuple[int, dict | None, dict | None] = (0, None, None)

    def wall_seconds(self) -> float:
        """Wall time of the run over all its attempts (earlier attempts up to their last checkpoint)."""
        return self.wall_offset + time.time() - self.attempt_start

    def register_model(
        self, name: str = "model", model: nn.Module | None = None, optim: Any = None, sched: Any = None
    ) -> None:
        """Make ``model`` (and its optimiser/scheduler) part of checkpoints, train/eval switching and LR updates.

        ``optim`` is a torch optimiser (stepped by ``model_update``) or any object with ``state_dict`` and
        ``load_state_dict``, such as a zeroth-order optimiser that steps itself: either way its state is the
        checkpoint's ``optimizer`` entry, so a resumed run continues it.
        """
        if self.__dict__.get("_models") is None:
            raise AttributeError("Cannot assign model before super().__init__() call")
        if self.__dict__.get("_optims") is None:
            raise AttributeError("Cannot assign optim before super().__init__() call")
        if self.__dict__.get("_scheds") is None:
            raise AttributeError("Cannot assign sched before super().__init__() call")
        if name in self._models:
            raise KeyError(f'Found duplicate model name "{name}"')
        self._models[name] = model
        self._optims[name] = optim
        self._scheds[name] = sched

    def get_model_names(self, names: str | list[str] | None = None) -> list[str]:
        names_real = list(self._models.keys())
        if names is None:
            return names_real
        names = tolist_if_not(names)
        for name in names:
            if name not in names_real:
                raise KeyError(f'Model "{name}" is not registered; registered: {names_real}')
        return names

    def extra_checkpoint_state(self) -> dict:
        """Trainer state beyond the registered models (e.g. query counts) to store in every checkpoint."""
        return {}

    def load_extra_checkpoint_state(self, state: dict) -> None:
        """Restore what :meth:`extra_checkpoint_state` saved."""

    def save_model(
        self,
        epoch: int,
        directory: str,
        is_best: bool = False,
        val_result: float | None = None,
        model_name: str = "",
        batches: int = 0,
        epoch_rng_state: dict | None = None,
        rng_state: dict | None = None,
        optim_states: dict[str, Any] | None = None,
    ) -> str:
        """Checkpoint every model after ``epoch`` (0-based) completed, or after ``batches`` steps into epoch
        ``epoch`` (a rolling ``model.pth.tar-E+B`` file, with the RNG state the epoch started from); returns the path
        of the first model's file. ``rng_state`` and ``optim_states`` (by model name) replace the current ones, to
        checkpoint the state from before a step that failed."""
        done = epoch + 1 if batches == 0 else epoch
        if batches:
            model_name = model_name or f"model.pth.tar-{done}+{batches}"
        if not distributed.is_writer():  # the path rank 0 writes, for messages
            self.last_checkpoint_time = time.time()
            names = self.get_model_names()
            fname = model_name or f"model.pth.tar-{done}"
            return osp.join(directory, names[0], fname) if names else ""
        rng_state = rng_state or capture_rng_state()
        extra = {
            "train_seconds": self.train_seconds + (time.time() - self._epoch_start if batches else 0.0),
            "wall_seconds": self.wall_seconds(),
            "best_result": None if self.best_result == -np.inf else float(self.best_result),
            "fingerprint": self.run_fingerprint,
            **self.extra_checkpoint_state(),
        }
        paths = []
        for name in self.get_model_names():
            optim, sched = self._optims[name], self._scheds[name]
            state = {
                "state_dict": self._models[name].state_dict(),
                "epoch": done,
                "batches": batches,
                "optimizer": (optim_states or {}).get(name, optim.state_dict() if optim is not None else None),
                "scheduler": sched.state_dict() if sched is not None else None,
                "val_result": val_result,
                "rng_state": rng_state,
                "epoch_rng_state": epoch_rng_state,
                "trainer_state": extra,
            }
            fdir = osp.join(directory, name)
            paths.append(save_checkpoint(state, fdir, is_best=is_best, model_name=model_name))
            if batches:
                self._prune_rolling(fdir)
        self.last_checkpoint_time = time.time()
        return paths[0] if paths else ""

    @staticmethod
    def _prune_rolling(fdir: str) -> None:
        rolling = sorted(
            (f for f in os.listdir(fdir) if "+" in f and checkpoint_position(f) is not None),
            key=lambda f: checkpoint_position(f) or (0, 0),
        )
        for fname in rolling[:-ROLLING_CHECKPOINTS_KEPT]:
            os.remove(osp.join(fdir, fname))

    def resume_model_if_exist(self, directory: str) -> int:
        """Resume every registered model from the newest intact checkpoint in ``directory/<name>/``; returns the
        completed epochs (a mid-epoch checkpoint also sets the steps to skip in that epoch)."""
        names = self.get_model_names()
        if not names or any(not osp.exists(osp.join(directory, name, "checkpoint")) for name in names):
            print("No checkpoint found, train from scratch")
            return 0
        print(f"Found checkpoint at {directory} (will resume training)")
        fpath, checkpoint = load_resume_checkpoint(osp.join(directory, names[0]))
        fname = osp.basename(fpath)
        for name in names:
            print(f'Loading checkpoint from "{osp.join(directory, name, fname)}"')
            state = checkpoint if name == names[0] else load_checkpoint(osp.join(directory, name, fname))
            restore_checkpoint(state, self._models[name], self._optims[name], self._scheds[name])
        trainer_state = checkpoint.get("trainer_state") or {}
        self.train_seconds = float(trainer_state.get("train_seconds", 0.0))
        self.wall_offset = float(trainer_state.get("wall_seconds", 0.0))
        best = trainer_state.get("best_result")
        self.best_result = -np.inf if best is None else float(best)
        self.load_extra_checkpoint_state(trainer_state)
        if checkpoint.get("rng_state") is not None:
            restore_rng_state(checkpoint["rng_state"])
        batches = int(checkpoint.get("batches") or 0)
        self._resume_position = (batches, checkpoint.get("epoch_rng_state"), checkpoint.get("rng_state"))
        where = f" and {batches} steps of epoch {checkpoint['epoch'] + 1}" if batches else ""
        print(f"Previous epoch: {checkpoint['epoch']}{where}")
        return checkpoint["epoch"]

    def load_model(self, directory: str, epoch: int | None = None) -> None:
        """Load weights for evaluation: ``model.pth.tar-{epoch}``, else ``model-best.pth.tar``, else the latest."""
        if not directory:
            print(
                "Note that load_model() is skipped as no pretrained model is given "
                "(ignore this if it's done on purpose)"
            )
            return
        for name in self.get_model_names():
            fdir = osp.join(directory, name)
            if epoch is not None:
                model_path = osp.join(fdir, f"model.pth.tar-{epoch}")
            elif osp.exists(osp.join(fdir, "model-best.pth.tar")):
                model_path = osp.join(fdir, "model-best.pth.tar")
            elif osp.exists(osp.join(fdir, "checkpoint")):
                model_path = _latest_checkpoint(fdir)
            else:
                model_path = osp.join(fdir, "model-best.pth.tar")
            if not osp.exists(model_path):
                raise FileNotFoundError(
                    f'No model at "{model_path}". Check --model-dir and --load-epoch '
                    f"(checkpoints are named model.pth.tar-N, N = epochs completed)."
                )
            checkpoint = load_checkpoint(model_path)
            val_result = checkpoint.get("val_result")
            extra = f", val_result={val_result:.1f}" if val_result is not None else ""
            print(f"Load {model_path} to {name} (epoch={checkpoint['epoch']}{extra})")
            self._models[name].load_state_dict(checkpoint["state_dict"])

    def set_model_mode(self, mode: str = "train", names: str | list[str] | None = None) -> None:
        for name in self.get_model_names(names):
            if mode == "train":
                self._models[name].train()
            elif mode in ("test", "eval"):
                self._models[name].eval()
            else:
                raise KeyError(f"Unknown model mode {mode!r}; use 'train', 'test' or 'eval'")

    def update_lr(self, names: str | list[str] | None = None) -> None:
        for name in self.get_model_names(names):
            if self._scheds[name] is not None:
                self._scheds[name].step()

    def detect_anomaly(self, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss).all():
            raise FloatingPointError("Loss is infinite or NaN!")

    def add_scalar_sink(self, sink: ScalarSink) -> None:
        """Send every scalar written from now on to ``sink`` too (e.g. a Weights & Biases run)."""
        self._sinks.append(sink)

    def init_writer(self, log_dir: str) -> None:
        """TensorBoard events in ``log_dir`` (a requirement; a note and no events when it is not installed)."""
        if any(isinstance(sink, TensorBoardSink) for sink in self._sinks):
            return
        try:
            sink = TensorBoardSink(log_dir)
        except ImportError:
            print("TensorBoard is not installed: training scalars are not written (pip install tensorboard)")
            return
        print(f"Initialize tensorboard (log_dir={log_dir})")
        self._sinks.append(sink)

    def close_writer(self) -> None:
        for sink in self._sinks:
            sink.close()
        self._sinks = []

    def progress_scalars(self) -> dict[str, float]:
        """Run-wide counters written with every step's metrics: trainers that query a model return the
        cumulative image queries as ``queries/images`` (and their cost as ``queries/usd``)."""
        return {}

    def write_scalars(self, scalars: dict[str, float], step: int | None = None) -> None:
        """Write ``scalars`` with the run's counters at ``step`` (default: the steps done), and against the
        cumulative queries under ``by_queries/`` when the trainer counts them."""
        if not self._sinks:
            return
        scalars = {**scalars, **self.progress_scalars()}
        queries = scalars.get(QUERIES_TAG)
        for sink in self._sinks:
            sink.write(scalars, self.global_step if step is None else step, None if queries is None else int(queries))

    def write_scalar(self, tag: str, scalar_value: float, global_step: int | None = None) -> None:
        """Dassl's single-scalar call, for plugins."""
        for sink in self._sinks:
            sink.write({tag: scalar_value}, self.global_step if global_step is None else global_step, None)

    def train(self, start_epoch: int, max_epoch: int) -> None:
        self.start_epoch = start_epoch
        self.max_epoch = max_epoch
        previous = self._catch_stop_signals()
        try:
            self.before_train()
            for self.epoch in range(self.start_epoch, self.max_epoch):  # noqa: B020 - Dassl's hooks read self.epoch
                self.before_epoch()
                self._epoch_start = time.time()
                self.run_epoch()
                self.train_seconds += time.time() - self._epoch_start
                self.after_epoch()
        except StopTraining as stop:
            self.train_seconds += time.time() - self._epoch_start
            self.stopped_by = stop.reason
            print(f"Training stopped early: {stop}")
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.after_train()

    def _catch_stop_signals(self) -> dict:
        """Make SIGTERM/SIGUSR1 request a clean stop; returns the previous handlers (none outside the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            return {}

        def request_stop(signum, frame):
            if self.stop_signal is None:
                print(f"Received {signal.Signals(signum).name}: checkpointing after this step, then stopping")
            self.stop_signal = signum

        return {signum: signal.signal(signum, request_stop) for signum in STOP_SIGNALS}

    def after_step(self, batches_done: int, epoch_rng_state: dict) -> None:
        """Called after each training step with the steps done in this epoch and the RNG state it started from."""

    def before_train(self) -> None:
        pass

    def after_train(self) -> None:
        pass

    def before_epoch(self) -> None:
        pass

    def after_epoch(self) -> None:
        pass

    def run_epoch(self) -> None:
        raise NotImplementedError

    def test(self, split: str | None = None):
        raise NotImplementedError

    def parse_batch_train(self, batch: dict):
        raise NotImplementedError

    def parse_batch_test(self, batch: dict):
        raise NotImplementedError

    def forward_backward(self, batch: dict) -> dict:
        raise NotImplementedError

    def model_inference(self, input: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _torch_optims(self, names: str | list[str] | None) -> list[torch.optim.Optimizer]:
        """The registered torch optimisers (a zeroth-order optimiser in the slot is stepped by its trainer)."""
        optims = (self._optims[name] for name in self.get_model_names(names))
        return [o for o in optims if isinstance(o, torch.optim.Optimizer)]

    def model_zero_grad(self, names: str | list[str] | None = None) -> None:
        for optim in self._torch_optims(names):
            optim.zero_grad()

    def model_backward(self, loss: torch.Tensor) -> None:
        self.detect_anomaly(loss)
        loss.backward()

    def model_update(self, names: str | list[str] | None = None) -> None:
        for optim in self._torch_optims(names):
            optim.step()

    def model_backward_and_update(self, loss: torch.Tensor, names: str | list[str] | None = None) -> None:
        self.model_zero_grad(names)
        self.model_backward(loss)
        self.model_update(names)

    def scaled_backward_and_update(self, loss: torch.Tensor, scaler: Any, optim: Any) -> None:
        """``model_backward_and_update``, or, with a GradScaler (fp16 autocast), the scaled backward and ``optim``'s
        step through it."""
        if scaler is None:
            self.model_backward_and_update(loss)
            return
        optim.zero_grad()
        self.detect_anomaly(loss)
        scaler.scale(loss).backward()
        scaler.step(optim)
        scaler.update()


class SimpleTrainer(TrainerBase):
    """Trainer with a DataManager, an evaluator, checkpointing per ``TRAIN.CHECKPOINT_FREQ`` and a final test."""

    def __init__(self, cfg) -> None:
        super().__init__()
        self.check_cfg(cfg)
        self.device = torch.device("cuda") if torch.cuda.is_available() and cfg.USE_CUDA else torch.device("cpu")
        self.start_epoch = self.epoch = 0
        self.max_epoch = cfg.OPTIM.MAX_EPOCH
        self.output_dir = cfg.OUTPUT_DIR
        self.cfg = cfg
        self.test_results: OrderedDict | None = None
        self.eval_split = cfg.TEST.SPLIT
        self.build_data_loader()
        self.build_model()
        self.evaluator = build_evaluator(cfg, lab2cname=self.lab2cname)

    def check_cfg(self, cfg) -> None:
        """Validate the config for this trainer before anything is built (``self.cfg`` is not set yet)."""

    def build_data_loader(self) -> None:
        dm = DataManager(self.cfg)
        self.train_loader_x = dm.train_loader_x
        self.train_loader_u = dm.train_loader_u
        self.val_loader = dm.val_loader
        self.test_loader = dm.test_loader
        self.num_classes = dm.num_classes
        self.num_source_domains = dm.num_source_domains
        self.lab2cname = dm.lab2cname
        self.dm = dm

    def build_model(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement build_model() and register its models")

    def run_info(self) -> dict:
        """Facts about the run for ``results.json`` (trainers add e.g. query counts)."""
        params = sum(p.numel() for m in self._models.values() for p in m.parameters() if p.requires_grad)
        return {"learnable_parameters": params, "train_time_s": round(self.train_seconds, 3)}

    def train(self) -> None:
        super().train(self.start_epoch, self.max_epoch)

    def before_train(self) -> None:
        directory = self.cfg.RESUME or self.cfg.OUTPUT_DIR
        self.start_epoch = self.resume_model_if_exist(directory)
        self.global_step = self.start_epoch * len(self.train_loader_x) + self._resume_position[0]
        self.last_checkpoint_time = time.time()
        if distributed.is_writer():
            self.init_writer(osp.join(self.output_dir, "tensorboard"))
        self.time_start = time.time()

    def after_train(self) -> None:
        print("Finish training")
        if not self.cfg.TEST.NO_TEST:
            if self.cfg.TEST.FINAL_MODEL == "best_val":
                print("Deploy the model with the best val performance")
                distributed.barrier()  # rank 0 has written the best model before any process reads it
                self.load_model(self.output_dir)
            else:
                print("Deploy the last-epoch model")
            self.test()
        elapsed = round(time.time() - self.time_start)
        print(f"Elapsed: {datetime.timedelta(seconds=elapsed)}")
        self.close_writer()

    def after_epoch(self) -> None:
        last_epoch = (self.epoch + 1) == self.max_epoch
        do_test = not self.cfg.TEST.NO_TEST
        freq = self.cfg.TRAIN.CHECKPOINT_FREQ
        meet_checkpoint_freq = (self.epoch + 1) % freq == 0 if freq > 0 else False
        if do_test and self.cfg.TEST.FINAL_MODEL == "best_val":
            curr_result = self.test(split="val")
            if curr_result > self.best_result:
                self.best_result = curr_result
                self.save_model(self.epoch, self.output_dir, val_result=curr_result, model_name="model-best.pth.tar")
        if meet_checkpoint_freq or last_epoch:
            self.save_model(self.epoch, self.output_dir)
        if distributed.world_size() > 1:
            self.stop_signal = distributed.agree_max([self.stop_signal or 0])[0] or None
        if self.stop_signal is not None:
            if not (meet_checkpoint_freq or last_epoch):
                self.save_model(self.epoch, self.output_dir)
            raise TrainingStopped.on_signal(self.stop_signal, self._latest_path())

    def _latest_path(self) -> str:
        fdir = osp.join(self.output_dir, self.get_model_names()[0])
        return _latest_checkpoint(fdir) if osp.isfile(osp.join(fdir, "checkpoint")) else fdir

    def checkpoint_due(self) -> bool:
        minutes = float(self.cfg.TRAIN.get("CHECKPOINT_MINUTES", 0) or 0)
        return minutes > 0 and time.time() - self.last_checkpoint_time >= 60 * minutes

    def after_step(self, batches_done: int, epoch_rng_state: dict) -> None:
        """After each training step: a rolling checkpoint when one is due by time or a stop was requested (then
        stop). With several processes both are decided together, on the first process to see them."""
        due = self.checkpoint_due()
        if distributed.world_size() > 1:
            signum, agreed_due = distributed.agree_max([self.stop_signal or 0, int(due)])
            self.stop_signal, due = signum or None, bool(agreed_due)
        if self.stop_signal is None and not due:
            return
        path = self.save_model(self.epoch, self.output_dir, batches=batches_done, epoch_rng_state=epoch_rng_state)
        if self.stop_signal is not None:
            raise TrainingStopped.on_signal(self.stop_signal, path)

    @torch.no_grad()
    def test(self, split: str | None = None) -> float:
        """Evaluate on ``split`` (default ``TEST.SPLIT``); prints the result block and returns accuracy."""
        self.set_model_mode("eval")
        self.evaluator.reset()
        split = split or self.cfg.TEST.SPLIT
        if split == "val" and self.val_loader is not None:
            data_loader = self.val_loader
        else:
            split = "test"
            data_loader = self.test_loader
        print(f"Evaluate on the *{split}* set")
        self.eval_split = split
        for batch_idx, batch in enumerate(tqdm(data_loader)):
            input, label = self.parse_batch_test(batch)
            output = self.model_inference(input)
            if not torch.isfinite(output).all():
                bad = int((~torch.isfinite(output)).any(dim=-1).sum()) if output.dim() > 1 else int(output.numel())
                raise FloatingPointError(
                    f"Non-finite logits on the {split} set (batch {batch_idx + 1}: {bad} of {output.shape[0]} images): "
                    f"an accuracy over them would be meaningless, so evaluation stopped. Check the prompt scale and "
                    f"the target's precision (e.g. TARGET.PRECISION fp32)."
                )
            self.evaluator.process(output, label)
        results = self.evaluator.evaluate()
        self.write_scalars({f"{split}/{k}": v for k, v in results.items()})
        if split == "test":
            self.test_results = results
        return list(results.values())[0]

    def model_inference(self, input: torch.Tensor) -> torch.Tensor:
        return self.model(input)

    def parse_batch_test(self, batch: dict):
        return batch["img"].to(self.device), batch["label"].to(self.device)

    def get_current_lr(self, names: str | list[str] | None = None) -> float:
        name = self.get_model_names(names)[0]
        optim = self._optims[name]
        if optim is None:
            return 0.0
        if hasattr(optim, "param_groups"):
            return optim.param_groups[0]["lr"]
        return float(getattr(optim, "lr", 0.0))


class TrainerX(SimpleTrainer):
    """Trainer over labelled data only (the base of CoOp-family and BlackVIP trainers)."""

    def run_epoch(self) -> None:
        self.set_model_mode("train")
        losses = MetricMeter()
        batch_time = AverageMeter()
        data_time = AverageMeter()
        self.num_batches = len(self.train_loader_x)
        skip, epoch_rng, resume_rng = self._resume_position
        self._resume_position = (0, None, None)
        if skip and epoch_rng is not None:
            restore_rng_state(epoch_rng)  # the state this epoch's data order was drawn from
        else:
            skip, epoch_rng = 0, capture_rng_state()
        batches = iter(self.train_loader_x)
        for _ in range(skip):  # replay the data order (and augmentation draws) of the steps already taken
            next(batches)
        if skip and resume_rng is not None:
            restore_rng_state(resume_rng)
        end = time.time()
        self.batch_idx = skip
        while True:
            before = capture_rng_state(), self._optimizer_snapshots()
            batch = next(batches, None)
            if batch is None:
                break
            data_time.update(time.time() - end)
            try:
                loss_summary = self.forward_backward(batch)
            except ResumableError as error:
                raise self._stop_before_step(epoch_rng, *before, error) from error
            batch_time.update(time.time() - end)
            losses.update(loss_summary)

            meet_freq = (self.batch_idx + 1) % self.cfg.TRAIN.PRINT_FREQ == 0
            only_few_batches = self.num_batches < self.cfg.TRAIN.PRINT_FREQ
            if meet_freq or only_few_batches:
                nb_remain = self.num_batches - self.batch_idx - 1
                nb_remain += (self.max_epoch - self.epoch - 1) * self.num_batches
                eta = str(datetime.timedelta(seconds=int(batch_time.avg * nb_remain)))
                print(
                    " ".join(
                        [
                            f"epoch [{self.epoch + 1}/{self.max_epoch}]",
                            f"batch [{self.batch_idx + 1}/{self.num_batches}]",
                            f"time {batch_time.val:.3f} ({batch_time.avg:.3f})",
                            f"data {data_time.val:.3f} ({data_time.avg:.3f})",
                            f"{losses}",
                            f"lr {self.get_current_lr():.4e}",
                            f"eta {eta}",
                        ]
                    )
                )
            self.global_step = self.epoch * self.num_batches + self.batch_idx + 1
            self.write_scalars(self.step_scalars(loss_summary))
            self.after_step(self.batch_idx + 1, epoch_rng)
            self.batch_idx += 1
            end = time.time()

    def step_scalars(self, loss_summary: dict) -> dict[str, float]:
        """One step's metrics for TensorBoard and wandb: the step's own values (not the epoch's running averages
        the log prints beside them) and the learning rate."""
        scalars = {f"train/{name}": float(value) for name, value in loss_summary.items()}
        scalars["train/lr"] = float(self.get_current_lr())
        return scalars

    def _stop_before_step(
        self, epoch_rng: dict, rng_state: dict, optim_states: dict[str, Any], error: Exception
    ) -> TrainingStopped:
        """Checkpoint the state from before the step that failed (at an epoch's first step: the epoch's start)."""
        if self.batch_idx == 0:
            path = self.save_model(self.epoch - 1, self.output_dir, rng_state=epoch_rng, optim_states=optim_states)
        else:
            path = self.save_model(
                self.epoch,
                self.output_dir,
                batches=self.batch_idx,
                epoch_rng_state=epoch_rng,
                rng_state=rng_state,
                optim_states=optim_states,
            )
        where = f"before step {self.batch_idx + 1} of epoch {self.epoch + 1}"
        return TrainingStopped(path, f"{where} ({error})", EX_TEMPFAIL)

    def _optimizer_snapshots(self) -> dict[str, Any]:
        """Copies of the state of optimisers that change before their step's losses are known (zeroth-order ones
        draw their directions first); torch optimisers change only after a successful step."""
        return {
            name: copy.deepcopy(optim.state_dict())
            for name, optim in self._optims.items()
            if optim is not None and not isinstance(optim, torch.optim.Optimizer)
        }

    def parse_batch_train(self, batch: dict):
        return batch["img"].to(self.device), batch["label"].to(self.device), batch["domain"].to(self.device)
