"""LeNet-5 for MNIST digits in the state-dict layout of the trained model that ships in the ``advertorch`` package."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# ITU-R BT.601 luma weights: how an image API turns RGB into the grayscale its digit model reads.
LUMA = (0.299, 0.587, 0.114)


class LeNet5(nn.Module):
    """Two 3x3 conv + max-pool blocks (32, 64 channels) and two linear layers; [0, 1] pixels, 28 x 28.

    RGB input is converted to luminance first, so the model behaves like a grayscale digit-recognition API.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.linear1 = nn.Linear(7 * 7 * 64, 200)
        self.linear2 = nn.Linear(200, 10)
        self.register_buffer("luma", torch.tensor(LUMA).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 3:
            x = (x * self.luma.to(x.dtype)).sum(dim=1, keepdim=True)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.linear2(F.relu(self.linear1(x.flatten(1))))
