"""LP: linear probe of CLIP, a linear head on frozen CLIP image features trained by back-propagation (white-box)."""

from __future__ import annotations

from torch import nn

from dassl.engine import TRAINER_REGISTRY
from trainers.config import ConfigKey, declare_keys
from trainers.methods.white_box import PREC_KEY, WhiteBoxCLIPTrainer

HEAD_INITS = ("zeroshot", "random")

KEYS = declare_keys(
    "TRAINER.LP",
    ConfigKey(
        "HEAD_INIT",
        "zeroshot",
        "initial head: zeroshot = the dataset template's CLIP text features x logit scale (starts at zero-shot "
        "accuracy), random = PyTorch's default Linear init",
        choices=HEAD_INITS,
    ),
    PREC_KEY,
)


@TRAINER_REGISTRY.register()
class LP(WhiteBoxCLIPTrainer):
    """The head only (D x C weights + C biases: 513K for ViT-B/16 on ImageNet); the image encoder stays frozen and
    out of checkpoints. Reference schedule: AdamW LR 3e-5, wd 0.1, 50 warm-up epochs from 1e-7, cosine, 500 epochs."""

    label = "LP (white-box)"
    script_family = None
    table_order = 8
    checkpoint_name = "head"

    def head_init(self) -> str:
        return self.method_node.HEAD_INIT

    def learned_module(self) -> nn.Module:
        return self.model.head
