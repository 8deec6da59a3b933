"""OpenAI's CLIP model interface on open_clip's modules, with OpenAI's state-dict layout and dtype handling.

What CoOp-family code relies on, and where open_clip differs:
- ``transformer`` takes sequence-first input (L, N, D) and applies the causal mask itself; open_clip's text
  transformer is batch-first and takes the mask as an argument.
- ``encode_image`` casts its input to the weights' dtype (``dtype``, the dtype of ``visual.conv1``).
- ``build_model`` keeps conv, linear, attention and projection weights in fp16 as OpenAI's does (layer norms
  compute in fp32 and return the input's dtype); ``.float()`` makes the model fp32.
- ``visual.input_resolution`` is the input side; ``forward`` returns ``(logits_per_image, logits_per_text)``.
"""

from __future__ import annotations

import math

import torch
from open_clip.model import CLIP as OpenCLIP
from open_clip.model import CLIPTextCfg, CLIPVisionCfg, convert_weights_to_fp16
from torch import nn

__all__ = ["CLIP", "SequenceFirstTransformer", "build_model", "convert_weights"]

# Entries of OpenAI's TorchScript state dicts that are not weights.
_NON_WEIGHT_KEYS = ("input_resolution", "context_length", "vocab_size")
# Projection matrices stored as bare parameters, kept in fp16 with the layers.
_FP16_PROJECTIONS = ("text_projection", "proj")


class SequenceFirstTransformer(nn.Module):
    """Residual attention blocks run on (L, N, D) input under a fixed causal mask, as OpenAI's text transformer."""

    def __init__(self, width: int, layers: int, resblocks: nn.ModuleList, attn_mask: torch.Tensor):
        super().__init__()
        self.width, self.layers = width, layers
        self.resblocks = resblocks
        self.register_buffer("attn_mask", attn_mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(L, N, D) -> (L, N, D); position i attends to positions <= i only."""
        length = x.shape[0]
        mask = self.attn_mask[:length, :length].to(x.dtype)
        x = x.transpose(0, 1)  # open_clip's blocks are batch-first
        for block in self.resblocks:
            x = block(x, attn_mask=mask)
        return x.transpose(0, 1)


class CLIP(nn.Module):
    """CLIP with OpenAI's constructor, attributes and methods; ``vision_layers`` a 4-tuple builds a ResNet tower."""

    def __init__(
        self,
        embed_dim: int,
        image_resolution: int,
        vision_layers: tuple[int, int, int, int] | int,
        vision_width: int,
        vision_patch_size: int | None,
        context_length: int,
        vocab_size: int,
        transformer_width: int,
        transformer_heads: int,
        transformer_layers: int,
    ):
        super().__init__()
        vision = CLIPVisionCfg(
            layers=vision_layers, width=vision_width, patch_size=vision_patch_size or 16, image_size=image_resolution
        )
        text = CLIPTextCfg(
            context_length=context_length,
            vocab_size=vocab_size,
            width=transformer_width,
            heads=transformer_heads,
            layers=transformer_layers,
        )
        # cast_dtype=fp16 selects layer norms that compute in fp32, as OpenAI's; the weights stay fp32 here.
        parts = OpenCLIP(
            embed_dim, vision, text, quick_gelu=True, cast_dtype=torch.float16, init_logit_scale=math.log(1 / 0.07)
        )
        self.context_length, self.vocab_size = context_length, vocab_size
        self.visual = parts.visual
        self.visual.input_resolution = image_resolution
        self.transformer = SequenceFirstTransformer(
            transformer_width, transformer_layers, parts.transformer.resblocks, parts.attn_mask
        )
        self.token_embedding = parts.token_embedding
        self.positional_embedding = parts.positional_embedding
        self.ln_final = parts.ln_final
        self.text_projection = parts.text_projection
        self.logit_scale = parts.logit_scale

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the towers compute in (fp16 after ``build_model``, fp32 after ``.float()``)."""
        return self.visual.conv1.weight.dtype

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """Image features (N, embed_dim) in ``dtype``; ``image`` is cast to ``dtype`` first."""
        return self.visual(image.type(self.dtype))

    def encode_text(self, text: torch.Tensor) -> torch.Tensor:
        """Text features (N, embed_dim): the final-norm output at each text's end token, projected."""
        x = self.token_embedding(text).type(self.dtype) + self.positional_embedding.type(self.dtype)
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = self.ln_final(x).type(self.dtype)
        end = text.argmax(dim=-1)  # the end token has the largest id
        return x[torch.arange(x.shape[0], device=x.device), end] @ self.text_projection

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits_per_image, logits_per_text)``: scaled cosine similarities, (N_img, N_txt) and its transpose."""
        scale = self.logit_scale.exp()
        per_image = scale * _unit(self.encode_image(image)) @ _unit(self.encode_text(text)).t()
        return per_image, per_image.t()


def _unit(features: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm."""
    return features / features.norm(dim=-1, keepdim=True)


def convert_weights(model: nn.Module) -> None:
    """Cast conv, linear, attention and projection weights to fp16 in place (OpenAI's mixed-precision layout)."""
    convert_weights_to_fp16(model)  # layers; it casts projections only on open_clip's own model classes
    for module in model.modules():
        for name in _FP16_PROJECTIONS:
            weight = getattr(module, name, None)
            if isinstance(weight, nn.Parameter):
                weight.data = weight.data.half()


def _count(state_dict: dict[str, torch.Tensor], prefix: str) -> int:
    """Number of distinct indices ``i`` among keys ``prefix.i.*``."""
    depth = prefix.count(".") + 1
    return len({k.split(".")[depth] for k in state_dict if k.startswith(prefix + ".")})


def architecture(state_dict: dict[str, torch.Tensor]) -> dict:
    """``CLIP``'s constructor arguments, read from the shapes in an OpenAI-layout state dict."""
    text_width = state_dict["ln_final.weight"].shape[0]
    args = dict(
        embed_dim=state_dict["text_projection"].shape[1],
        context_length=state_dict["positional_embedding"].shape[0],
        vocab_size=state_dict["token_embedding.weight"].shape[0],
        transformer_width=text_width,
        transformer_heads=text_width // 64,
        transformer_layers=_count(state_dict, "transformer.resblocks"),
    )
    if "visual.proj" in state_dict:  # vision transformer
        patch = state_dict["visual.conv1.weight"].shape[-1]
        grid = round((state_dict["visual.positional_embedding"].shape[0] - 1) ** 0.5)
        return dict(
            args,
            image_resolution=patch * grid,
            vision_layers=_count(state_dict, "visual.transformer.resblocks"),
            vision_width=state_dict["visual.conv1.weight"].shape[0],
            vision_patch_size=patch,
        )
    grid = round((state_dict["visual.attnpool.positional_embedding"].shape[0] - 1) ** 0.5)
    return dict(
        args,
        image_resolution=32 * grid,  # the ResNet tower downsamples by 32
        vision_layers=tuple(_count(state_dict, f"visual.layer{i}") for i in range(1, 5)),
        vision_width=state_dict["visual.layer1.0.conv1.weight"].shape[0],
        vision_patch_size=None,
    )


def build_model(state_dict: dict[str, torch.Tensor]) -> CLIP:
    """The eval-mode CLIP an OpenAI-layout state dict describes, with OpenAI's fp16 weight layout."""
    state_dict = {k: v for k, v in state_dict.items() if k not in _NON_WEIGHT_KEYS}
    model = CLIP(**architecture(state_dict))
    convert_weights(model)
    model.load_state_dict(state_dict)
    return model.eval()
