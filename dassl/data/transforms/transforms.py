"""Dassl's ``build_transform`` for the choices configs name, on torchvision transforms."""

from __future__ import annotations

import random
from collections.abc import Sequence

from PIL import Image
from torchvision.transforms import (
    CenterCrop,
    ColorJitter,
    Compose,
    GaussianBlur,
    InterpolationMode,
    Normalize,
    RandomApply,
    RandomCrop,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    ToTensor,
)

INTERPOLATION_MODES = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "nearest": InterpolationMode.NEAREST,
}

AVAI_CHOICES = [
    "random_flip",
    "random_resized_crop",
    "normalize",
    "random_crop",
    "random_translation",
    "center_crop",
    "colorjitter",
    "randomgrayscale",
    "gaussian_blur",
]


class Random2DTranslation:
    """With probability ``p`` enlarge the image by 1/8 and crop a random ``(height, width)`` window; else resize."""

    def __init__(self, height: int, width: int, p: float = 0.5, interpolation=InterpolationMode.BILINEAR) -> None:
        self.height, self.width, self.p = height, width, p
        self.interpolation = interpolation

    def __call__(self, img: Image.Image) -> Image.Image:
        if random.uniform(0, 1) > self.p:
            return Resize((self.height, self.width), interpolation=self.interpolation)(img)
        new_w, new_h = int(round(self.width * 1.125)), int(round(self.height * 1.125))
        img = Resize((new_h, new_w), interpolation=self.interpolation)(img)
        x1 = int(round(random.uniform(0, new_w - self.width)))
        y1 = int(round(random.uniform(0, new_h - self.height)))
        return img.crop((x1, y1, x1 + self.width, y1 + self.height))


def _check(cfg, choices: Sequence[str]) -> None:
    unknown = [c for c in choices if c not in AVAI_CHOICES]
    if unknown:
        raise ValueError(f"Unknown INPUT.TRANSFORMS {unknown}; supported: {AVAI_CHOICES}.")
    if cfg.INPUT.INTERPOLATION not in INTERPOLATION_MODES:
        raise ValueError(
            f"INPUT.INTERPOLATION must be one of {list(INTERPOLATION_MODES)}, got {cfg.INPUT.INTERPOLATION!r}"
        )


def build_transform(cfg, is_train: bool = True, choices: Sequence[str] | None = None):
    """Training or test pipeline for ``INPUT.TRANSFORMS`` (or ``choices``); None when ``INPUT.NO_TRANSFORM``."""
    if cfg.INPUT.NO_TRANSFORM:
        print("Note: no transform is applied!")
        return None
    choices = list(cfg.INPUT.TRANSFORMS if choices is None else choices)
    _check(cfg, choices)
    normalize = Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD)
    return (_build_transform_train if is_train else _build_transform_test)(cfg, choices, normalize)


def _build_transform_train(cfg, choices: list[str], normalize: Normalize) -> Compose:
    print("Building transform_train")
    size = tuple(cfg.INPUT.SIZE)
    interp = INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]
    tfm = []
    if "random_crop" not in choices and "random_resized_crop" not in choices:
        print(f"+ resize to {size[0]}x{size[1]}")
        tfm.append(Resize(size, interpolation=interp))
    if "center_crop" in choices:
        print(f"+ center crop (size: {size[0]}x{size[1]})")
        tfm.append(CenterCrop(size))
    if "random_translation" in choices:
        print("+ random translation")
        tfm.append(Random2DTranslation(size[0], size[1], interpolation=interp))
    if "random_crop" in choices:
        print(f"+ random crop (padding = {cfg.INPUT.CROP_PADDING})")
        tfm.append(RandomCrop(size, padding=cfg.INPUT.CROP_PADDING))
    if "random_resized_crop" in choices:
        scale = tuple(cfg.INPUT.RRCROP_SCALE)
        print(f"+ random resized crop (size={size}, scale={scale})")
        tfm.append(RandomResizedCrop(size, scale=scale, interpolation=interp))
    if "random_flip" in choices:
        print("+ random flip")
        tfm.append(RandomHorizontalFlip())
    if "colorjitter" in choices:
        i = cfg.INPUT
        print(f"+ color jitter (b={i.COLORJITTER_B}, c={i.COLORJITTER_C}, s={i.COLORJITTER_S}, h={i.COLORJITTER_H})")
        tfm.append(ColorJitter(i.COLORJITTER_B, i.COLORJITTER_C, i.COLORJITTER_S, i.COLORJITTER_H))
    if "randomgrayscale" in choices:
        print(f"+ random gray scale (p={cfg.INPUT.RGS_P})")
        tfm.append(RandomGrayscale(p=cfg.INPUT.RGS_P))
    if "gaussian_blur" in choices:
        print(f"+ gaussian blur (kernel={cfg.INPUT.GB_K}, p={cfg.INPUT.GB_P})")
        tfm.append(RandomApply([GaussianBlur(cfg.INPUT.GB_K)], p=cfg.INPUT.GB_P))
    print("+ to torch tensor of range [0, 1]")
    tfm.append(ToTensor())
    if "normalize" in choices:
        print(f"+ normalization (mean={cfg.INPUT.PIXEL_MEAN}, std={cfg.INPUT.PIXEL_STD})")
        tfm.append(normalize)
    return Compose(tfm)


def _build_transform_test(cfg, choices: list[str], normalize: Normalize) -> Compose:
    print("Building transform_test")
    size = tuple(cfg.INPUT.SIZE)
    interp = INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]
    print(f"+ resize the smaller edge to {max(size)}")
    print(f"+ {size[0]}x{size[1]} center crop")
    print("+ to torch tensor of range [0, 1]")
    tfm = [Resize(max(size), interpolation=interp), CenterCrop(size), ToTensor()]
    if "normalize" in choices:
        print(f"+ normalization (mean={cfg.INPUT.PIXEL_MEAN}, std={cfg.INPUT.PIXEL_STD})")
        tfm.append(normalize)
    return Compose(tfm)
