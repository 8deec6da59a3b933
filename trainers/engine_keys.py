"""Dassl's engine keys that a run reads, with their meaning, allowed range and whether they change the result.

Their defaults stay Dassl's (declaring a key that exists does not change it); ``TRAIN.CHECKPOINT_MINUTES`` is new.
"""

from __future__ import annotations

from trainers.config import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, ConfigKey, Range, declare_keys

ENGINE_KEYS = declare_keys(
    "",
    ConfigKey("OUTPUT_DIR", "./output", "folder of the run: log, checkpoints, results.json", result=False),
    ConfigKey("RESUME", "", "folder to resume training from (empty: OUTPUT_DIR)", result=False),
    ConfigKey("SEED", -1, "random seed (-1: unseeded)", valid=Range(0, also=(-1,))),
    ConfigKey("VERBOSE", True, "print more while building", result=False),
    ConfigKey("DATASET.ROOT", "", "folder that holds the datasets", result=False),
    ConfigKey("DATASET.NUM_SHOTS", -1, "training images per class (-1: all of them)", valid=Range(1, also=(-1,))),
    ConfigKey("OPTIM.MAX_EPOCH", 10, "training epochs", valid=AT_LEAST_ONE),
    ConfigKey("OPTIM.LR", 0.0003, "learning rate of a gradient-trained method", valid=POSITIVE),
    ConfigKey("DATALOADER.TRAIN_X.BATCH_SIZE", 32, "training images per step", valid=AT_LEAST_ONE),
    ConfigKey("DATALOADER.TEST.BATCH_SIZE", 32, "images per evaluation batch", valid=AT_LEAST_ONE),
    ConfigKey("DATALOADER.NUM_WORKERS", 4, "data-loading processes (0: load in the main process)", valid=NON_NEGATIVE),
    ConfigKey("TRAIN.PRINT_FREQ", 10, "print a training line every this many steps", valid=AT_LEAST_ONE, result=False),
    ConfigKey(
        "TRAIN.CHECKPOINT_FREQ",
        0,
        "keep a checkpoint every this many epochs (0: only the last epoch's)",
        valid=NON_NEGATIVE,
        result=False,
    ),
    ConfigKey(
        "TRAIN.CHECKPOINT_MINUTES",
        10.0,
        "also checkpoint after a step when this many minutes passed since the last checkpoint, so a killed run "
        "loses at most that much (0: off)",
        valid=NON_NEGATIVE,
        result=False,
    ),
)
