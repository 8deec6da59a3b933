"""Utilities re-exported at ``dassl.utils`` (the import path plugins use)."""

from .logger import Logger, close_logger, setup_logger
from .meters import AverageMeter, MetricMeter
from .registry import Registry, check_availability
from .tools import (
    atomic_write,
    check_isfile,
    collect_env_info,
    download_url,
    get_most_similar_str_to_a_from_b,
    listdir_nohidden,
    mkdir_if_missing,
    read_image,
    read_json,
    remove_stale_temp_files,
    set_random_seed,
    tolist_if_not,
    write_json,
)
from .torchtools import (
    CheckpointError,
    capture_rng_state,
    checkpoint_candidates,
    checkpoint_position,
    count_num_param,
    load_checkpoint,
    load_pretrained_weights,
    load_resume_checkpoint,
    restore_checkpoint,
    restore_rng_state,
    resume_from_checkpoint,
    save_checkpoint,
)
