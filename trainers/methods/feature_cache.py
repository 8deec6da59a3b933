"""Frozen-encoder features per training image, for training pipelines whose transform is deterministic.

With a deterministic training transform an image looks the same every epoch, so its frozen-encoder
features never change: they are computed once, in dataset order, instead of once per step. Filling the
cache in a fixed order (not in the sampler's order) keeps resumed and uninterrupted runs bit-identical.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# Transforms that map an image to the same tensor every time they are applied.
DETERMINISTIC_TRANSFORMS = {"normalize", "center_crop"}
# Larger training sets keep computing features per step (the cache would hold every image's features).
MAX_CACHED_IMAGES = 100_000


def deterministic_train_transform(cfg) -> bool:
    """True if every training view of an image is identical (no random augmentation, one view)."""
    return (
        not cfg.INPUT.NO_TRANSFORM
        and cfg.DATALOADER.K_TRANSFORMS == 1
        and set(cfg.INPUT.TRANSFORMS) <= DETERMINISTIC_TRANSFORMS
    )


class FeatureCache:
    """Encoder features of every image of a dataset, looked up by the batch's ``index`` entries."""

    def __init__(self, features: torch.Tensor) -> None:
        self.features = features

    @classmethod
    def build(
        cls, dataset, encode: Callable[[torch.Tensor], torch.Tensor], device: torch.device, batch_size: int = 64
    ) -> FeatureCache:
        """Encode ``dataset`` (a DatasetWrapper with its training transform) in index order."""
        chunks = []
        for start in range(0, len(dataset), batch_size):
            images = torch.stack([dataset[i]["img"] for i in range(start, min(start + batch_size, len(dataset)))])
            chunks.append(encode(images.to(device)))
        return cls(torch.cat(chunks))

    def __len__(self) -> int:
        return self.features.shape[0]

    def __getitem__(self, indices: torch.Tensor) -> torch.Tensor:
        return self.features[indices.to(self.features.device)]
