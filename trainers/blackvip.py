"""BLACKVIP: an input-dependent prompt from the Coordinator (frozen encoder + decoder + trigger), trained by SPSA-GC."""

from __future__ import annotations

import contextlib

import torch

from dassl.engine import TRAINER_REGISTRY
from trainers.config import NON_NEGATIVE, POSITIVE, ConfigKey, declare_keys
from trainers.encoders import available_encoders
from trainers.methods import BlackBoxTrainer
from trainers.methods.blackbox import cuda_fp16_autocast
from trainers.methods.feature_cache import MAX_CACHED_IMAGES, FeatureCache, deterministic_train_transform
from trainers.methods.losses import cross_entropy
from trainers.prompters import Coordinator, CoordinatorContext, prompters_reading
from trainers.zo import PROMPT_SPACE_KEYS, SPSA_KEYS

AMP_CHOICES = ("amp", "fp32")

KEYS = declare_keys(
    "TRAINER.BLACKVIP",
    ConfigKey(
        "METHOD",
        "coordinator",
        "prompt design: coordinator (pretrained encoder) or coordinator_init (scratch)",
        choices=prompters_reading("PT_BACKBONE", "PT_BACKBONE_PATH", "SRC_DIM", "E_OUT_DIM", "P_EPS"),
    ),
    ConfigKey(
        "PT_BACKBONE",
        "vit-mae-base",
        "the Coordinator's frozen encoder (a registered one; unused by coordinator_init)",
        choices=lambda: ("", *available_encoders()),
    ),
    ConfigKey(
        "PT_BACKBONE_PATH",
        "",
        "local folder of the encoder's Hugging Face checkpoint (empty: the HF cache)",
        result=False,
    ),
    ConfigKey("SRC_DIM", 1568, "decoder input size: encoder features + prompt trigger (784, 1568 or 3136)"),
    ConfigKey("E_OUT_DIM", 0, "coordinator_init: channels of the scratch encoder's 7 x 7 output", valid=NON_NEGATIVE),
    *SPSA_KEYS,
    *PROMPT_SPACE_KEYS,
    ConfigKey("P_EPS", 1.0, "prompt scale: the image plus P_EPS x the decoder's prompt", valid=POSITIVE),
    ConfigKey(
        "PREC", "amp", "training precision: amp = fp16 autocast on CUDA (the reference), fp32", choices=AMP_CHOICES
    ),
)


@TRAINER_REGISTRY.register()
class BLACKVIP(BlackBoxTrainer):
    """Reference defaults: MAE ViT-B encoder, SRC_DIM 1568 (9,920 learnable), SPSA-GC with 5 perturbations.

    Training runs under fp16 autocast on CUDA (``PREC amp``, as the reference does); evaluation is fp32.
    """

    label = "BlackVIP"
    script_family = "blackvip"
    table_order = 50
    checkpoint_name = "coordinator"

    def before_train(self) -> None:
        super().before_train()
        self.feature_cache = None
        dataset = self.train_loader_x.dataset
        if not isinstance(self.prompter, Coordinator) or not deterministic_train_transform(self.cfg):
            return
        if len(dataset) > MAX_CACHED_IMAGES:
            print(
                f"Coordinator features are computed per step ({len(dataset):,} training images is more than "
                f"the {MAX_CACHED_IMAGES:,} the feature cache holds)"
            )
            return
        with self.train_autocast():
            self.feature_cache = FeatureCache.build(dataset, self.prompter.encode, self.device)
        print(
            f"Coordinator features cached for {len(self.feature_cache):,} training images "
            f"(the training transform is deterministic, so they never change)"
        )

    def prepare_batch(self, batch: dict, images: torch.Tensor) -> CoordinatorContext:
        if self.feature_cache is None:
            return self.prompter.prepare(images)
        return self.prompter.prepare(images, z=self.feature_cache[batch["index"]])

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return cross_entropy(logits, labels)

    def train_autocast(self) -> contextlib.AbstractContextManager:
        return cuda_fp16_autocast(self.device, self.cfg.TRAINER.BLACKVIP.PREC == "amp")
