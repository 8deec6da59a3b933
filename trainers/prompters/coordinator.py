"""BlackVIP's Coordinator: a frozen image encoder plus a small learnable decoder that writes an image-sized prompt.

Also ``CoordinatorInit``, the reference's variant with a frozen, randomly initialised conv encoder. The
pretrained encoders themselves are in ``trainers.encoders``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from dassl.config import CfgNode
from trainers.encoders import build_encoder

from .base import CLIP_MEAN, CLIP_STD, PROMPTER_REGISTRY, Prompter, clip_to_pixel_range

DECODER_GRID = 7
"""The decoder starts from a 7 x 7 map and doubles it once per stage: five stages give the reference's 224 x 224."""
MAX_STAGES = 5
FULL_SIDE = DECODER_GRID * 2**MAX_STAGES
"""Side of the largest prompt the decoder writes (224, the reference's)."""


def num_stages(image_size: int) -> int:
    """Doublings of the 7 x 7 grid needed to cover ``image_size`` (5 for 224, 2 for 28), at most five."""
    stages = 1
    while DECODER_GRID * 2**stages < image_size and stages < MAX_STAGES:
        stages += 1
    return stages


def upsample_stage(c_in: int, c_mid: int, c_out: int, groups: int) -> nn.Sequential:
    """Grouped 2x2 stride-2 transposed conv (with bias), 1x1 channel mixer (no bias), BatchNorm, GELU."""
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_mid, kernel_size=2, stride=2, groups=groups),
        nn.ConvTranspose2d(c_mid, c_out, kernel_size=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.GELU(),
    )


class Decoder(nn.Module):
    """Prompt decoder: ``[z, trigger]`` reshaped to (src_dim/49, 7, 7), upsampled to a 3-channel prompt.

    For 224 x 224 images this is the reference's decoder: four upsampling stages and a final 16 -> 3
    transposed conv (five doublings, 9,120 weights for src_dim 1568). Smaller images use fewer doublings
    (``num_stages``): the first stages are kept and the final conv maps the last of them to 3 channels.
    The trigger (``src_dim - z_dim`` values, U(0, 0.1)) fills the channels the encoder features leave
    free; with ``z_dim == src_dim`` there is none. No output activation.
    """

    def __init__(self, src_dim: int, z_dim: int, stage1_groups: int | None = None, image_size: int = FULL_SIDE) -> None:
        super().__init__()
        cells = DECODER_GRID * DECODER_GRID
        if src_dim % cells != 0:
            raise ValueError(f"src_dim must be divisible by {cells}, got {src_dim}")
        if z_dim > src_dim:
            raise ValueError(f"src_dim ({src_dim}) must be at least the feature size ({z_dim})")
        self.src_channels = src_dim // cells
        groups = stage1_groups if stage1_groups is not None else min(self.src_channels, 64)
        stages = [
            upsample_stage(self.src_channels, 64, 64, groups),
            upsample_stage(64, 64, 32, 64),
            upsample_stage(32, 32, 32, 32),
            upsample_stage(32, 32, 16, 32),
        ][: num_stages(image_size) - 1]
        last_channels = stages[-1][1].out_channels if stages else self.src_channels
        self.body = nn.Sequential(*stages, nn.ConvTranspose2d(last_channels, 3, kernel_size=2, stride=2, bias=False))
        trigger_dim = src_dim - z_dim
        self.trigger = nn.Parameter(torch.rand(1, trigger_dim) * 0.1) if trigger_dim > 0 else None

    def forward(self, z: Tensor) -> Tensor:
        n = z.shape[0]
        flat = z.reshape(n, -1)
        if self.trigger is not None:
            flat = torch.cat([flat, self.trigger.expand(n, -1)], dim=1)
        return self.body(flat.view(n, self.src_channels, DECODER_GRID, DECODER_GRID))


ENCODER_WIDTHS = (32, 64, 64, 128)
"""Output channels of the scratch encoder's first four blocks; the fifth block gives ``out_dim``."""
ENCODER_MIN_WIDTH = 32
"""Narrowest 3x3 conv of the scratch encoder: the first block widens RGB to 32 channels."""


class ConvEncoder(nn.Module):
    """Random conv encoder of ``coordinator_init``: [3x3 conv, 2x2 stride-2 conv, BN, GELU] blocks down to 7x7.

    Each block's 3x3 conv (with bias) keeps its input width, at least 32, and its 2x2 conv (no bias) sets the
    output width. For 224 x 224 images these are the reference's five blocks, channels 3->32, 32->32;
    32->32, 32->64; 64->64, 64->64; 64->64, 64->128; 128->128, 128->out_dim (310,048 values for out_dim 32).
    Smaller images keep the first blocks and end with the out_dim block, one block per halving
    (``num_stages``). Its BatchNorms keep no running statistics, so they always normalise with the batch's
    own statistics, in any mode.
    """

    def __init__(self, out_dim: int = 32, image_size: int = FULL_SIDE) -> None:
        super().__init__()
        stages = num_stages(image_size)
        outs = [*ENCODER_WIDTHS[: stages - 1], out_dim]
        ins = [3, *outs[:-1]]
        self.blocks = nn.Sequential(*[self._block(c_in, c_out) for c_in, c_out in zip(ins, outs)])
        self.out_dim = out_dim
        self.input_size = DECODER_GRID * 2**stages

    @staticmethod
    def _block(c_in: int, c_out: int) -> nn.Sequential:
        width = max(c_in, ENCODER_MIN_WIDTH)
        return nn.Sequential(
            nn.Conv2d(c_in, width, kernel_size=3, stride=1, padding=1),
            nn.Conv2d(width, c_out, kernel_size=2, stride=2, bias=False),
            nn.BatchNorm2d(c_out, track_running_stats=False),
            nn.GELU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(x)


@dataclass
class CoordinatorContext:
    """The per-batch work a Coordinator does once per step: the input images and their encoder features."""

    x: Tensor
    z: Tensor


class _EncoderDecoderPrompter(Prompter[CoordinatorContext]):
    """Shared machinery: encoder features computed once in ``prepare``, one decoder pass per parameter vector.

    The decoder's BatchNorms follow the module's mode: in train mode every pass (``forward`` or each row
    of ``apply_many``, in row order) normalises with its own batch statistics and updates the running
    statistics; in eval mode the running statistics are used.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: Decoder,
        p_eps: float,
        mean: Sequence[float],
        std: Sequence[float],
        image_size: int,
    ) -> None:
        super().__init__()
        self.encoder = encoder.requires_grad_(False)
        self.decoder = decoder
        self.p_eps = float(p_eps)
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.image_size = image_size

    def learnable_named_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return list(self.decoder.named_parameters(prefix="decoder"))

    def _check_size(self, x: Tensor) -> None:
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f"expected {self.image_size}x{self.image_size} images, got {tuple(x.shape[-2:])}")

    def encode(self, x: Tensor) -> Tensor:
        """Frozen-encoder features of the batch (resized to the encoder's input size if needed)."""
        self._check_size(x)
        size = self.encoder.input_size
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        with torch.no_grad():
            return self.encoder(x)

    def prepare(self, x: Tensor, z: Tensor | None = None) -> CoordinatorContext:
        """The batch and its encoder features: computed here once per step, or given (e.g. from a cache)."""
        self._check_size(x)
        return CoordinatorContext(x=x, z=self.encode(x) if z is None else z)

    def render(self, x: Tensor, prompt: Tensor) -> Tensor:
        """``clip_to_pixel_range(x + p_eps * prompt)``; a prompt larger than the image (7 x 2^k) is resized first."""
        if prompt.shape[-2:] != x.shape[-2:]:
            prompt = F.interpolate(prompt, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)
        return clip_to_pixel_range(x + self.p_eps * prompt, self.mean, self.std)

    def forward(self, x: Tensor) -> Tensor:
        ctx = self.prepare(x)
        return self.render(ctx.x, self.decoder(ctx.z))

    supports_prompt_space = True

    def prompts(self, ctx: CoordinatorContext, w: Tensor) -> Tensor:
        """The decoder's prompts for the flat vector ``w`` (differentiable in ``w``; one decoder pass)."""
        params = {name.removeprefix("decoder."): value for name, value in self.split_flat(w).items()}
        return functional_call(self.decoder, params, (ctx.z,))

    def render_prompts(self, ctx: CoordinatorContext, prompts: Tensor) -> Tensor:
        with torch.no_grad():
            return self.render(ctx.x.repeat(prompts.shape[0], 1, 1, 1), prompts.flatten(0, 1))

    def apply_many(self, ctx: CoordinatorContext, W: Tensor) -> Tensor:
        W = self._check_many(W)
        outputs = []
        with torch.no_grad():
            for w in W:
                params = {name.removeprefix("decoder."): value for name, value in self.split_flat(w).items()}
                outputs.append(self.render(ctx.x, functional_call(self.decoder, params, (ctx.z,))))
        return torch.cat(outputs)


def _drop_encoder_state(module: nn.Module, state_dict: dict, prefix: str, local_metadata: Any) -> None:
    """``state_dict`` hook: leave the frozen pretrained encoder out of checkpoints."""
    for key in [k for k in state_dict if k.startswith(prefix + "encoder.")]:
        del state_dict[key]


def _keep_encoder_state(module: nn.Module, state_dict: dict, prefix: str, *args: Any) -> None:
    """``load_state_dict`` pre-hook: a checkpoint without encoder entries keeps the encoder as it is."""
    for name, value in module.encoder.state_dict().items():
        state_dict.setdefault(prefix + "encoder." + name, value)


def _check_encoder_shapes(module: nn.Module, state_dict: dict, prefix: str, *args: Any) -> None:
    """``load_state_dict`` pre-hook: refuse, with the reason, a checkpoint whose scratch encoder has other shapes."""
    for name, value in module.encoder.state_dict().items():
        saved = state_dict.get(prefix + "encoder." + name)
        if saved is not None and saved.shape != value.shape:
            raise RuntimeError(
                f"This coordinator_init checkpoint holds a scratch encoder of other layer shapes "
                f"({prefix}encoder.{name}: {tuple(saved.shape)} saved, {tuple(value.shape)} expected). "
                f"Checkpoints written before the encoder took the reference's channel widths "
                f"(3->32->32, 32->32->64, 64->64->64, 64->64->128, 128->128->E_OUT_DIM) are a different model "
                f"and cannot be resumed or evaluated; train it again."
            )


@PROMPTER_REGISTRY.register(name="coordinator")
class Coordinator(_EncoderDecoderPrompter):
    """BlackVIP's prompt generator: frozen pretrained encoder -> features z, decoder(z, trigger) -> prompt.

    Output ``clip_to_pixel_range(x + p_eps * prompt)``. Learnable: decoder and trigger (9,920 values with
    z_dim 768 and src_dim 1568). ``encoder`` is a ``FrozenEncoder`` or any module mapping images to
    (N, out_dim) with ``out_dim`` and ``input_size`` attributes (and optionally ``stage1_groups``). It stays
    in eval mode whatever the module's mode, and it is left out of ``state_dict`` (it is rebuilt from its
    own weights), so checkpoints hold only what was learned.
    """

    def __init__(
        self,
        encoder: nn.Module,
        src_dim: int = 1568,
        p_eps: float = 1.0,
        mean: Sequence[float] = CLIP_MEAN,
        std: Sequence[float] = CLIP_STD,
        image_size: int = 224,
    ) -> None:
        z_dim = encoder.out_dim
        cells = DECODER_GRID * DECODER_GRID
        if src_dim % cells != 0 or src_dim <= z_dim:
            raise ValueError(
                f"src_dim must be a multiple of {cells} larger than the encoder's feature size {z_dim}, got {src_dim}"
            )
        decoder = Decoder(src_dim, z_dim, getattr(encoder, "stage1_groups", None), image_size=image_size)
        super().__init__(encoder.eval(), decoder, p_eps, mean, std, image_size)
        self.register_state_dict_post_hook(_drop_encoder_state)
        self.register_load_state_dict_pre_hook(_keep_encoder_state)

    def train(self, mode: bool = True) -> Coordinator:
        super().train(mode)
        self.encoder.eval()
        return self

    node_keys = ("PT_BACKBONE", "PT_BACKBONE_PATH", "SRC_DIM", "P_EPS")

    @classmethod
    def example(cls) -> Coordinator:
        return cls(build_encoder("tiny-vit"), src_dim=49, image_size=28)

    @classmethod
    def from_cfg(cls, cfg: CfgNode, node: CfgNode) -> Coordinator:
        """BlackVIP's node: the encoder ``PT_BACKBONE`` (weights at ``PT_BACKBONE_PATH``), ``SRC_DIM``, ``P_EPS``."""
        encoder = build_encoder(node.PT_BACKBONE, path=node.PT_BACKBONE_PATH, allow_download=cfg.TARGET.DOWNLOAD)
        return cls(
            encoder,
            src_dim=node.SRC_DIM,
            p_eps=node.P_EPS,
            mean=cfg.INPUT.PIXEL_MEAN,
            std=cfg.INPUT.PIXEL_STD,
            image_size=cfg.INPUT.SIZE[0],
        )


@PROMPTER_REGISTRY.register(name="coordinator_init")
class CoordinatorInit(_EncoderDecoderPrompter):
    """BlackVIP with a randomly initialised, frozen conv encoder (the reference's ``coordinator_init``).

    The (N, e_out_dim, 7, 7) encoder map feeds the decoder directly (no trigger); only the decoder is
    learnable (9,120 values for e_out_dim 32). The encoder's BatchNorms always use batch statistics, as
    the reference's encoder is never switched to eval mode. Its random weights are part of ``state_dict``, and a
    checkpoint whose encoder has other layer shapes is refused with the reason.
    """

    def __init__(
        self,
        e_out_dim: int = 32,
        p_eps: float = 1.0,
        mean: Sequence[float] = CLIP_MEAN,
        std: Sequence[float] = CLIP_STD,
        image_size: int = 224,
    ) -> None:
        src_dim = e_out_dim * DECODER_GRID * DECODER_GRID
        super().__init__(
            ConvEncoder(e_out_dim, image_size),
            Decoder(src_dim, src_dim, image_size=image_size),
            p_eps,
            mean,
            std,
            image_size,
        )
        self.register_load_state_dict_pre_hook(_check_encoder_shapes)

    node_keys = ("E_OUT_DIM", "P_EPS")

    @classmethod
    def example(cls) -> CoordinatorInit:
        return cls(e_out_dim=4, image_size=28)

    @classmethod
    def from_cfg(cls, cfg: CfgNode, node: CfgNode) -> CoordinatorInit:
        """BlackVIP's node: the scratch encoder's ``E_OUT_DIM`` and ``P_EPS``."""
        return cls(
            e_out_dim=node.E_OUT_DIM,
            p_eps=node.P_EPS,
            mean=cfg.INPUT.PIXEL_MEAN,
            std=cfg.INPUT.PIXEL_STD,
            image_size=cfg.INPUT.SIZE[0],
        )
