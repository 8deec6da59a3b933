"""Per-example losses on target logits (the black box returns logits; the loss is computed on our side)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-example cross-entropy, computed in float32."""
    return F.cross_entropy(logits.float(), labels, reduction="none")


def focal_loss(logits: torch.Tensor, labels: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Per-example focal loss -(1 - p_y)^gamma log p_y without class weighting (BAR's loss)."""
    log_p = F.log_softmax(logits.float(), dim=1).gather(1, labels[:, None]).squeeze(1)
    return -((1.0 - log_p.exp()) ** gamma) * log_p
