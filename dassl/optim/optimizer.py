"""``build_optimizer`` over Dassl's ``OPTIM.*`` keys."""

from __future__ import annotations

import warnings

import torch
import torch.nn as nn

AVAI_OPTIMS = ["adam", "amsgrad", "sgd", "rmsprop", "radam", "adamw"]


def build_optimizer(model, optim_cfg, param_groups=None) -> torch.optim.Optimizer:
    """Optimiser for an ``nn.Module`` or an iterable of parameters, with optional staged learning rates."""
    name = optim_cfg.NAME
    if name not in AVAI_OPTIMS:
        raise ValueError(f"optim must be one of {AVAI_OPTIMS}, but got {name}")
    lr, wd = optim_cfg.LR, optim_cfg.WEIGHT_DECAY
    betas = (optim_cfg.ADAM_BETA1, optim_cfg.ADAM_BETA2)

    if param_groups is not None and optim_cfg.STAGED_LR:
        warnings.warn(
            "staged_lr will be ignored, if you need to use staged_lr, please bind it with param_groups yourself.",
            stacklevel=2,
        )
    if param_groups is None:
        if optim_cfg.STAGED_LR:
            if not isinstance(model, nn.Module):
                raise TypeError("When STAGED_LR is True, model given to build_optimizer() must be an nn.Module")
            new_layers = [optim_cfg.NEW_LAYERS] if isinstance(optim_cfg.NEW_LAYERS, str) else list(optim_cfg.NEW_LAYERS)
            base, new = [], []
            for child_name, child in model.named_children():
                (new if child_name in new_layers else base).extend(child.parameters())
            param_groups = [{"params": base, "lr": lr * optim_cfg.BASE_LR_MULT}, {"params": new}]
        else:
            param_groups = model.parameters() if isinstance(model, nn.Module) else model

    if name in ("adam", "amsgrad"):
        return torch.optim.Adam(param_groups, lr=lr, weight_decay=wd, betas=betas, amsgrad=name == "amsgrad")
    if name == "sgd":
        return torch.optim.SGD(
            param_groups,
            lr=lr,
            momentum=optim_cfg.MOMENTUM,
            weight_decay=wd,
            dampening=optim_cfg.SGD_DAMPNING,
            nesterov=optim_cfg.SGD_NESTEROV,
        )
    if name == "rmsprop":
        return torch.optim.RMSprop(
            param_groups, lr=lr, momentum=optim_cfg.MOMENTUM, weight_decay=wd, alpha=optim_cfg.RMSPROP_ALPHA
        )
    if name == "radam":
        return torch.optim.RAdam(param_groups, lr=lr, weight_decay=wd, betas=betas)
    return torch.optim.AdamW(param_groups, lr=lr, weight_decay=wd, betas=betas)
