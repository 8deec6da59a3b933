"""White-box references: CLIP's image encoder with a linear head, trained by back-propagation (LP and FT).

These are not black-box methods: they read CLIP's weights and gradients. They stand beside the black-box rows
of the BlackVIP paper (Table 4) as what full access buys. The head is ``exp(logit_scale) * T`` on L2-normalised
image features (T: the dataset template's text features, as the zero-shot target uses), with a zero bias, so
an untrained model is zero-shot CLIP; LP may start from a random head instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dassl.config import CfgNode
from dassl.engine import TrainerX
from dassl.metrics import compute_accuracy
from dassl.optim import build_lr_scheduler, build_optimizer
from dassl.utils import distributed
from dassl.utils.scalars import query_scalars
from trainers.config import ConfigKey, validate_cfg
from trainers.targets import CLIP_MEAN, CLIP_STD, QueryCounter
from trainers.targets.clip import encode_prompts, load_clip
from trainers.targets.templates import build_prompts, template_for

from .losses import cross_entropy
from .prompted import DEFAULT_TABLE_ORDER

ACCESS = "white-box"
"""What ``results.json`` records as ``access`` for these methods (they read weights and gradients)."""

PREC_CHOICES = ("amp", "fp32")
PREC_KEY = ConfigKey(
    "PREC", "fp32", "training precision: amp = fp16 autocast with loss scaling on CUDA, fp32", choices=PREC_CHOICES
)


def zero_shot_head(model: nn.Module, classnames: Sequence[str], template: str) -> nn.Linear:
    """A linear head equal to CLIP's zero-shot classifier on normalised features: weight ``exp(logit_scale) * T``, bias 0."""
    text = encode_prompts(model, build_prompts(template, list(classnames)))
    head = nn.Linear(text.shape[1], text.shape[0])
    with torch.no_grad():
        head.weight.copy_(float(model.logit_scale.exp()) * text)
        head.bias.zero_()
    return head


class CLIPClassifier(nn.Module):
    """``head(normalize(visual(x)))`` for images in the config's normalisation, converted to CLIP's first."""

    def __init__(
        self, visual: nn.Module, head: nn.Linear, input_mean: Sequence[float], input_std: Sequence[float]
    ) -> None:
        super().__init__()
        self.visual = visual
        self.head = head
        mean = torch.tensor(input_mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(input_std, dtype=torch.float32).view(1, 3, 1, 1)
        clip_mean = torch.tensor(CLIP_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
        clip_std = torch.tensor(CLIP_STD, dtype=torch.float32).view(1, 3, 1, 1)
        self.register_buffer("scale", std / clip_std, persistent=False)
        self.register_buffer("shift", (mean - clip_mean) / clip_std, persistent=False)

    def features(self, x: Tensor) -> Tensor:
        """L2-normalised image features in fp32."""
        return F.normalize(self.visual(x * self.scale + self.shift).float(), dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class WhiteBoxCLIPTrainer(TrainerX):
    """Base of LP and FT: CLIP (``MODEL.BACKBONE.NAME``, weights as the target finds them) with a linear head,
    trained with the ``OPTIM`` optimiser and schedule (stepped once per epoch), cross-entropy, optional amp.

    Subclasses choose what is learned (``learned_module``) and how the head starts (``head_init``). Every image
    through the model is counted like a target query, so tables compare the same quantities.
    """

    label: ClassVar[str] = ""
    script_family: ClassVar[str | None] = None
    table_order: ClassVar[int] = DEFAULT_TABLE_ORDER
    checkpoint_name: ClassVar[str] = "model"
    access: ClassVar[str] = ACCESS

    @property
    def method_node(self) -> CfgNode:
        return self.cfg.TRAINER[type(self).__name__]

    def check_cfg(self, cfg: CfgNode) -> None:
        validate_cfg(cfg)
        name = type(self).__name__
        if cfg.TARGET.NAME.lower() != "clip":
            raise ValueError(
                f"{name} fine-tunes CLIP itself (white-box), so TARGET.NAME must be clip, got {cfg.TARGET.NAME!r}"
            )
        if cfg.TARGET.BUDGET_IMAGES or cfg.TARGET.BUDGET_USD:
            raise ValueError(
                f"{name} runs CLIP locally with its weights and gradients; query budgets (TARGET.BUDGET_IMAGES, "
                f"TARGET.BUDGET_USD) apply to black-box methods only. Leave them at 0."
            )

    def head_init(self) -> str:
        """``zeroshot`` or ``random``."""
        return "zeroshot"

    def learned_module(self) -> nn.Module:
        """The part of ``self.model`` that the optimiser updates and checkpoints hold."""
        raise NotImplementedError

    def build_model(self) -> None:
        cfg = self.cfg
        clip, source = load_clip(cfg.MODEL.BACKBONE.NAME, cfg.TARGET.CHECKPOINT, bool(cfg.TARGET.DOWNLOAD))
        side = clip.visual.image_size
        side = side if isinstance(side, int) else side[0]
        if tuple(cfg.INPUT.SIZE) != (side, side):
            raise ValueError(
                f"INPUT.SIZE {tuple(cfg.INPUT.SIZE)} must be CLIP {cfg.MODEL.BACKBONE.NAME}'s input size ({side}, {side})"
            )
        clip = clip.float().to(self.device)
        if self.head_init() == "zeroshot":
            head = zero_shot_head(clip, self.dm.dataset.classnames, template_for(cfg.DATASET.NAME))
        else:
            head = nn.Linear(clip.visual.output_dim, len(self.dm.dataset.classnames))
        self.model = CLIPClassifier(clip.visual, head, cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD).to(self.device)
        self.model.requires_grad_(False)
        learned = self.learned_module().requires_grad_(True)
        self.optim = build_optimizer(learned, cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, cfg.OPTIM)
        self.register_model(self.checkpoint_name, learned, self.optim, self.sched)
        self.use_amp = self.method_node.PREC == "amp" and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if self.use_amp else None
        self.counter = QueryCounter()
        print(f"Model: CLIP {cfg.MODEL.BACKBONE.NAME} ({source}) image encoder with a {self.head_init()} linear head")
        print(f"Access: {self.access} (back-propagates through CLIP's weights; not a black-box method)")
        print(f"Learnable parameters: {self.num_learnable()}")

    def num_learnable(self) -> int:
        return sum(p.numel() for p in self.learned_module().parameters())

    def set_model_mode(self, mode: str = "train", names=None) -> None:
        """Only the learned part switches to train mode; the frozen rest stays in eval mode."""
        self.model.eval()
        super().set_model_mode(mode, names)

    def train_autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast("cuda", dtype=torch.float16) if self.use_amp else contextlib.nullcontext()

    def forward_backward(self, batch: dict) -> dict:
        images, labels = batch["img"].to(self.device), batch["label"].to(self.device)
        with self.train_autocast():
            logits = self.model(images)
            loss = cross_entropy(logits, labels).mean()
        self.counter.add("train", len(images))
        self.scaled_backward_and_update(loss, self.scaler, self.optim)
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        return {"loss": loss.item(), "acc": compute_accuracy(logits, labels)[0].item()}

    def model_inference(self, images: Tensor) -> Tensor:
        self.counter.add(self.eval_split, len(images))
        return self.model(images)

    def extra_checkpoint_state(self) -> dict:
        state = {"queries": self.counter.state_dict()}
        if self.scaler is not None:
            state["grad_scaler"] = self.scaler.state_dict()
        return state

    def load_extra_checkpoint_state(self, state: dict) -> None:
        if "queries" in state:
            self.counter.load_state_dict(state["queries"])
        if self.scaler is not None and "grad_scaler" in state:
            self.scaler.load_state_dict(state["grad_scaler"])

    def progress_scalars(self) -> dict[str, float]:
        return query_scalars(self.counter.images())

    def after_train(self) -> None:
        print(self.counter.summary_line())
        if distributed.is_writer():
            print("No prompt grid: this method learns no prompt")
        super().after_train()

    def run_info(self) -> dict:
        info = super().run_info()
        info.update(
            {
                "learnable_parameters": self.num_learnable(),
                "access": self.access,
                "queries": self.counter.as_dict(),
            }
        )
        return info
