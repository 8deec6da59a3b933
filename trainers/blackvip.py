"""BLACKVIP: an input-dependent prompt from the Coordinator (frozen encoder + decoder + trigger), trained by SPSA-GC."""

from __future__ import annotations

from dassl.engine import TRAINER_REGISTRY
from trainers.blackbox import BlackBoxTrainer, cuda_fp16_autocast
from trainers.coordinator import Coordinator, CoordinatorInit, build_encoder
from trainers.feature_cache import MAX_CACHED_IMAGES, FeatureCache, deterministic_train_transform
from trainers.losses import cross_entropy
from trainers.zo import SPSA

METHODS = ("coordinator", "coordinator_init")
OPT_TYPES = ("spsa", "spsa-gc")
PRECISIONS = ("amp", "fp32")


@TRAINER_REGISTRY.register()
class BLACKVIP(BlackBoxTrainer):
    """Reference defaults: MAE ViT-B encoder, SRC_DIM 1568 (9,920 learnable), SPSA-GC with 5 perturbations.

    Training runs under fp16 autocast on CUDA (``PREC amp``, as the reference does); evaluation is fp32.
    """

    model_name = "coordinator"

    def check_cfg(self, cfg) -> None:
        c = cfg.TRAINER.BLACKVIP
        if c.METHOD not in METHODS:
            raise ValueError(f"TRAINER.BLACKVIP.METHOD must be one of {METHODS}, got {c.METHOD!r}")
        if c.OPT_TYPE not in OPT_TYPES:
            raise ValueError(f"TRAINER.BLACKVIP.OPT_TYPE must be one of {OPT_TYPES}, got {c.OPT_TYPE!r}")
        if c.PREC not in PRECISIONS:
            raise ValueError(f"TRAINER.BLACKVIP.PREC must be one of {PRECISIONS}, got {c.PREC!r}")

    def build_prompter(self):
        cfg, c = self.cfg, self.cfg.TRAINER.BLACKVIP
        mean, std = cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD
        if c.METHOD == "coordinator_init":
            return CoordinatorInit(
                e_out_dim=c.E_OUT_DIM, p_eps=c.P_EPS, mean=mean, std=std, image_size=cfg.INPUT.SIZE[0]
            )
        encoder = build_encoder(c.PT_BACKBONE, path=c.PT_BACKBONE_PATH, allow_download=cfg.TARGET.DOWNLOAD)
        return Coordinator(encoder, src_dim=c.SRC_DIM, p_eps=c.P_EPS, mean=mean, std=std, image_size=cfg.INPUT.SIZE[0])

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

    def prepare_batch(self, batch: dict, images):
        if self.feature_cache is None:
            return self.prompter.prepare(images)
        return self.prompter.prepare(images, z=self.feature_cache[batch["index"]])

    def build_zo_optimizer(self, dim: int) -> SPSA:
        c = self.cfg.TRAINER.BLACKVIP
        return SPSA(
            dim,
            [float(v) for v in c.SPSA_PARAMS],
            sp_avg=c.SP_AVG,
            gc=c.OPT_TYPE == "spsa-gc",
            moms=c.MOMS,
            one_sided=c.ONE_SIDED,
            clip_norm=c.CLIP_NORM,
            seed=max(self.cfg.SEED, 0),
        )

    def loss(self, logits, labels):
        return cross_entropy(logits, labels)

    def train_autocast(self):
        return cuda_fp16_autocast(self.device, self.cfg.TRAINER.BLACKVIP.PREC == "amp")
