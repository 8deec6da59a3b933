"""The black box every method queries: normalised images in, downstream-class logits out, every query counted.

A ``Target`` wraps a frozen model that stays private: it is not an ``nn.Module`` and exposes no parameters.
The base class owns what all targets share: input checks, the conversion from the config's normalisation
to the model's, the bicubic resize to the model's input size, splitting into calls of at most ``max_batch``
images, precision, devices and the ``QueryCounter``. Subclasses only turn a ready batch into logits.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from dassl.config import CfgNode
from dassl.utils import Registry
from trainers.config import NON_NEGATIVE, ConfigKey, declare_keys

from .budget import Budget

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

TARGET_REGISTRY = Registry("TARGET")
"""Target classes by ``TARGET.NAME``."""


def target_names() -> list[str]:
    """Registered target names (the allowed ``TARGET.NAME`` values)."""
    return TARGET_REGISTRY.registered_names()


KEYS = declare_keys(
    "TARGET",
    ConfigKey("NAME", "clip", "the black box every method queries", choices=target_names),
    ConfigKey(
        "CHECKPOINT", "", "explicit weights file of the target model (empty: look in the usual caches)", result=False
    ),
    ConfigKey(
        "DOWNLOAD", False, "fetch missing pretrained weights from the network (targets and encoders)", result=False
    ),
    ConfigKey("PRECISION", "fp32", "dtype of the target's weights; fp16 and bf16 need CUDA", choices=tuple(PRECISIONS)),
    ConfigKey(
        "MAX_BATCH",
        0,
        "most images per target call, memory or API limit (0 = no limit)",
        valid=NON_NEGATIVE,
        result=False,
    ),
    ConfigKey(
        "USD_PER_1K",
        0.0,
        "price of 1,000 image queries in USD, reported beside the counts (0 = no cost line)",
        valid=NON_NEGATIVE,
        result=False,
    ),
    ConfigKey(
        "BUDGET_IMAGES",
        0,
        "most images the run may send to the target, training and evaluation together; training stops before a "
        "step that would exceed it (0 = no limit)",
        valid=NON_NEGATIVE,
        result=False,
    ),
    ConfigKey(
        "BUDGET_USD",
        0.0,
        "most USD the run may spend on queries at TARGET.USD_PER_1K (0 = no limit); the tighter of the two budgets "
        "applies",
        valid=NON_NEGATIVE,
        result=False,
    ),
)


class QueryCounter:
    """Image-level queries and calls per split ("train", "val", "test", ...), with an optional cost rate."""

    def __init__(self, usd_per_1k: float = 0.0):
        if usd_per_1k < 0:
            raise ValueError(f"usd_per_1k must be >= 0, got {usd_per_1k}")
        self.usd_per_1k = float(usd_per_1k)
        self._images: dict[str, int] = {}
        self._calls: dict[str, int] = {}

    def add(self, split: str, images: int, calls: int = 1) -> None:
        """Record ``calls`` model calls that together carried ``images`` images."""
        if split == "total":
            raise ValueError('"total" is reserved for the sum over splits')
        if images < 0 or calls < 0:
            raise ValueError(f"counts must be >= 0, got images={images}, calls={calls}")
        self._images[split] = self._images.get(split, 0) + int(images)
        self._calls[split] = self._calls.get(split, 0) + int(calls)

    def images(self, split: str | None = None) -> int:
        """Images sent for ``split``, or over all splits when ``split`` is None."""
        return sum(self._images.values()) if split is None else self._images.get(split, 0)

    def calls(self, split: str | None = None) -> int:
        """Model calls made for ``split``, or over all splits when ``split`` is None."""
        return sum(self._calls.values()) if split is None else self._calls.get(split, 0)

    def usd(self) -> float:
        """Cost of all images sent so far at ``usd_per_1k``."""
        return self.images() / 1000.0 * self.usd_per_1k

    def as_dict(self) -> dict:
        """JSON-ready counts per split, their total, the rate and the cost."""
        out: dict = {s: {"images": self._images[s], "calls": self._calls[s]} for s in self._images}
        out["total"] = {"images": self.images(), "calls": self.calls()}
        out["usd_per_1k"] = self.usd_per_1k
        out["usd"] = self.usd()
        return out

    def summary_line(self) -> str:
        """``Target queries: N images in M calls``, with the cost appended when a rate is set."""
        line = f"Target queries: {self.images()} images in {self.calls()} calls"
        if self.usd_per_1k > 0:
            line += f" (USD {_money(self.usd())} at {_money(self.usd_per_1k)} per 1k images)"
        return line

    def state_dict(self) -> dict:
        """The counts, so that a resumed run keeps counting where it stopped (the rate comes from the config)."""
        return {"images": dict(self._images), "calls": dict(self._calls)}

    def load_state_dict(self, state: dict) -> None:
        """Replace the counts with those of ``state_dict()``."""
        self._images = {str(k): int(v) for k, v in state["images"].items()}
        self._calls = {str(k): int(v) for k, v in state["calls"].items()}


def _money(x: float) -> str:
    """Two decimals, or two significant digits for amounts below a cent."""
    return f"{x:.2f}" if x == 0 or x >= 0.01 else f"{x:.2g}"


def precision_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The weight dtype for ``precision``; half precisions are refused off CUDA."""
    if precision not in PRECISIONS:
        raise ValueError(f"TARGET.PRECISION must be one of {sorted(PRECISIONS)}, got {precision!r}")
    if precision != "fp32" and device.type != "cuda":
        raise ValueError(
            f"TARGET.PRECISION {precision} needs a CUDA device; this target is on {device}. "
            "Use TARGET.PRECISION fp32 on CPU."
        )
    return PRECISIONS[precision]


class Target:
    """Frozen model behind a query interface: ``(N,3,H,W)`` normalised images -> ``(N,C)`` float32 logits.

    Images are normalised with ``input_mean``/``input_std`` (the config's ``INPUT.PIXEL_MEAN/STD``); the
    target converts them to the model's normalisation and resizes them bicubically (antialiased) to
    ``input_size`` when their side differs. A request of N images makes ``ceil(N / max_batch)`` model calls
    (one when ``max_batch`` is 0) and is counted as such on ``counter`` under the given split. A request that
    would exceed ``budget`` raises ``BudgetExceeded`` before anything is sent.
    """

    classnames: list[str]
    num_classes: int
    input_size: int
    max_batch: int
    counter: QueryCounter
    budget: Budget

    def __init__(
        self,
        classnames: Sequence[str],
        *,
        max_batch: int = 0,
        counter: QueryCounter | None = None,
        budget: Budget | None = None,
        precision: str = "fp32",
        device: str | torch.device = "cpu",
        input_mean: Sequence[float] = CLIP_MEAN,
        input_std: Sequence[float] = CLIP_STD,
        model_mean: Sequence[float] = CLIP_MEAN,
        model_std: Sequence[float] = CLIP_STD,
    ):
        if max_batch < 0:
            raise ValueError(f"TARGET.MAX_BATCH must be >= 0, got {max_batch}")
        if not classnames:
            raise ValueError("A target needs at least one class name")
        self.classnames = list(classnames)
        self.num_classes = len(self.classnames)
        self.max_batch = int(max_batch)
        self.counter = counter if counter is not None else QueryCounter()
        self.budget = budget if budget is not None else Budget()
        self.precision = precision
        self.device = torch.device(device)
        self._dtype = precision_dtype(precision, self.device)
        self._renorm = _renormalisation(input_mean, input_std, model_mean, model_std, self.device)
        self.input_size = 0  # set by the subclass once its model is built
        self._resize_noted = False

    def accounting(self) -> dict[str, Any]:
        """What ``results.json`` records of this target's queries: counts per split, and the budget when one is set."""
        info: dict[str, Any] = {"queries": self.counter.as_dict()}
        if self.budget.limited:
            info["budget_images"] = self.budget.images
        return info

    def __call__(self, images: torch.Tensor, split: str = "train") -> torch.Tensor:
        """Logits for ``images`` without autograd; counted under ``split``."""
        with torch.no_grad():
            return self._query(images, split)

    def logits_with_input_grad(self, images: torch.Tensor, split: str = "train") -> torch.Tensor:
        """Logits differentiable w.r.t. ``images`` (white-box baseline only); the model stays frozen."""
        with torch.enable_grad():
            return self._query(images, split)

    def to(self, device: str | torch.device) -> Target:
        """Move the wrapped model and constants to ``device``; returns self."""
        device = torch.device(device)
        precision_dtype(self.precision, device)
        self.device = device
        self._renorm = tuple(t.to(device) for t in self._renorm)
        self._move(device)
        return self

    @classmethod
    def example(cls) -> Target:
        """A small instance (no download) for the contract tests every registered target must pass."""
        raise NotImplementedError(f"{cls.__name__} does not define example")

    @classmethod
    def from_cfg(cls, cfg: CfgNode, classnames: list[str], device: str | torch.device) -> Target:
        """Build from the config (``common_target_args`` plus the subclass's own keys)."""
        raise NotImplementedError(f"{cls.__name__} does not define from_cfg")

    def describe(self) -> str:
        """One line for the log: model, weights, precision, number of classes."""
        raise NotImplementedError

    def _logits(self, images: torch.Tensor) -> torch.Tensor:
        """Model call on a ready batch (model normalisation, ``input_size``, model dtype, target device)."""
        raise NotImplementedError

    def _move(self, device: torch.device) -> None:
        """Move the subclass's model and constant tensors to ``device``."""
        raise NotImplementedError

    def _query(self, images: torch.Tensor, split: str) -> torch.Tensor:
        self._check(images)
        if len(images) == 0:
            return images.new_zeros((0, self.num_classes), dtype=torch.float32)
        self.budget.check(self.counter, split, len(images))
        out = []
        for chunk in images.split(self.max_batch or len(images)):
            out.append(self._logits(self._prepare(chunk)).float())
            self.counter.add(split, len(chunk), calls=1)
        return torch.cat(out).to(images.device)

    def _check(self, images: torch.Tensor) -> None:
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"Target expects a (N, 3, H, W) image tensor, got {shape}")

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Convert a chunk to the model's normalisation, input size, dtype and device."""
        x = images.to(self.device, torch.float32)
        if self._renorm:
            x = x * self._renorm[0] + self._renorm[1]
        if x.shape[-2:] != (self.input_size, self.input_size):
            if not self._resize_noted:
                self._resize_noted = True
                warnings.warn(
                    f"Queries of {x.shape[-1]}x{x.shape[-2]} images are resized (bicubic) to the target's "
                    f"{self.input_size}x{self.input_size} input",
                    stacklevel=4,
                )
            x = F.interpolate(
                x, size=(self.input_size, self.input_size), mode="bicubic", align_corners=False, antialias=True
            )
        return x.to(self._dtype)


def register_target(name: str) -> Callable[[type[Target]], type[Target]]:
    """Class decorator adding a ``Target`` subclass to the registry as ``TARGET.NAME name``."""

    def add(cls: type[Target]) -> type[Target]:
        TARGET_REGISTRY.register(cls, name=name)
        return cls

    return add


def common_target_args(cfg: CfgNode, device: str | torch.device) -> dict[str, Any]:
    """The ``Target.__init__`` arguments every target reads from ``TARGET.*`` and ``INPUT.*``."""
    t = cfg.TARGET
    return dict(
        max_batch=int(t.MAX_BATCH),
        counter=QueryCounter(float(t.USD_PER_1K)),
        budget=Budget.from_cfg(cfg),
        precision=t.PRECISION,
        device=device,
        input_mean=tuple(cfg.INPUT.PIXEL_MEAN),
        input_std=tuple(cfg.INPUT.PIXEL_STD),
    )


def build_target(cfg: CfgNode, classnames: list[str], device: str | torch.device = "cpu") -> Target:
    """The target that ``cfg.TARGET.NAME`` names, for ``classnames``, on ``device``."""
    name = cfg.TARGET.NAME.lower()
    if name not in TARGET_REGISTRY:
        raise ValueError(f"TARGET.NAME must be one of {tuple(target_names())}, got {cfg.TARGET.NAME!r}")
    return TARGET_REGISTRY.get(name).from_cfg(cfg, classnames, device)


def _renormalisation(input_mean, input_std, model_mean, model_std, device) -> tuple[torch.Tensor, ...]:
    """Per-channel (scale, shift) from the input normalisation to the model's; empty when they agree."""
    im, istd, mm, mstd = (
        torch.tensor(v, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        for v in (input_mean, input_std, model_mean, model_std)
    )
    if torch.allclose(im, mm) and torch.allclose(istd, mstd):
        return ()
    return istd / mstd, (im - mm) / mstd
