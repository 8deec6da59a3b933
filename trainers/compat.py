"""Reference keys that no code here reads: CoOp's, CoCoOp's and the reference's fine-tuning trainer's.

They are declared so that yaml files written for the reference code bases merge unchanged; each is marked
``compat`` (``python train.py --list-keys`` labels them as read by nothing here).
"""

from __future__ import annotations

from trainers.config import ConfigKey, declare_keys

_UNUSED = "reference compatibility: no trainer here reads it"

KEYS = (
    *declare_keys("TRAINER.FTCLIP", ConfigKey("METHOD", "ft", _UNUSED, compat=True)),
    *declare_keys(
        "TRAINER.COOP",
        ConfigKey("N_CTX", 16, _UNUSED, compat=True),
        ConfigKey("CSC", False, _UNUSED, compat=True),
        ConfigKey("CTX_INIT", "", _UNUSED, compat=True),
        ConfigKey("PREC", "fp16", _UNUSED, compat=True),
        ConfigKey("CLASS_TOKEN_POSITION", "end", _UNUSED, compat=True),
    ),
    *declare_keys(
        "TRAINER.COCOOP",
        ConfigKey("N_CTX", 16, _UNUSED, compat=True),
        ConfigKey("CTX_INIT", "", _UNUSED, compat=True),
        ConfigKey("PREC", "fp16", _UNUSED, compat=True),
    ),
)
