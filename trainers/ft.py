"""FT: full fine-tuning of CLIP's image encoder with the zero-shot head, by back-propagation (white-box)."""

from __future__ import annotations

from torch import nn

from dassl.engine import TRAINER_REGISTRY
from trainers.config import declare_keys
from trainers.methods.white_box import PREC_KEY, WhiteBoxCLIPTrainer

KEYS = declare_keys("TRAINER.FT", PREC_KEY)


@TRAINER_REGISTRY.register()
class FT(WhiteBoxCLIPTrainer):
    """Every weight of the image encoder and the head (about 86M for ViT-B/16), the head initialised from the zero-shot
    text features. Reference schedule: AdamW LR 3e-5, wd 0.1, 50 warm-up epochs from 1e-7, cosine, 500 epochs."""

    label = "FT (white-box)"
    script_family = None
    table_order = 5
    checkpoint_name = "model"

    def learned_module(self) -> nn.Module:
        return self.model
