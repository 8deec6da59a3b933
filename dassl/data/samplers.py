"""Samplers named by ``DATALOADER.*.SAMPLER``."""

from torch.utils.data import RandomSampler, SequentialSampler

AVAI_SAMPLERS = {"RandomSampler": RandomSampler, "SequentialSampler": SequentialSampler}


def build_sampler(
    sampler_type: str, cfg=None, data_source=None, batch_size: int = 32, n_domain: int = 0, n_ins: int = 16
):
    if sampler_type not in AVAI_SAMPLERS:
        raise ValueError(f"Unknown sampler type: {sampler_type}. Supported: {list(AVAI_SAMPLERS)}")
    return AVAI_SAMPLERS[sampler_type](data_source)
