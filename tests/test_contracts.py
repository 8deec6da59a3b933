"""Contracts every registered plugin must keep, run over the registries (a new plugin is tested for free).

Prompters: ``apply_many`` equals looping ``forward``, the flat vector round-trips. Optimisers: one oracle call
per step, a quadratic decreases, resuming from ``state_dict`` continues bit for bit. Targets: exact image and
call counts, float32 logits of the right shape, no parameters exposed. Methods: a label users see.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from dassl.engine import TRAINER_REGISTRY
from trainers.config import declared_keys, extend_cfg, validate_cfg
from trainers.plugins import load_plugins
from trainers.prompters import PROMPTER_REGISTRY
from trainers.targets import TARGET_REGISTRY
from trainers.zo import ZO_REGISTRY

load_plugins()


def registered(registry) -> list:
    return [pytest.param(cls, id=name) for name, cls in registry.items()]


# ---------------------------------------------------------------- prompters


@pytest.fixture(params=registered(PROMPTER_REGISTRY))
def prompter(request):
    torch.manual_seed(0)
    return request.param.example().eval()


def images_for(prompter, n: int = 3) -> torch.Tensor:
    side = getattr(prompter, "image_size", 16)
    return torch.randn(n, 3, side, side, generator=torch.Generator().manual_seed(1))


def test_prompter_apply_many_equals_looping_forward(prompter):
    x = images_for(prompter)
    base = prompter.get_flat()
    W = base + 0.1 * torch.randn(3, base.numel(), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        batched = prompter.apply_many(prompter.prepare(x), W)
        assert torch.equal(prompter.get_flat(), base), "apply_many must not change the stored parameters"
        looped = []
        for w in W:
            prompter.set_flat(w)
            looped.append(prompter(x))
    torch.testing.assert_close(batched, torch.cat(looped), rtol=1e-5, atol=1e-5)
    assert batched.shape[0] == 3 * len(x)


def test_prompter_flat_vector_round_trips(prompter):
    w = torch.randn(prompter.flat_dim(), generator=torch.Generator().manual_seed(3))
    prompter.set_flat(w)
    assert torch.equal(prompter.get_flat(), w)
    assert prompter.get_flat().dtype == torch.float32
    assert 0 < prompter.num_learnable() <= prompter.flat_dim()


# ---------------------------------------------------------------- zeroth-order optimisers

DIM = 12


def quadratic(optimum: torch.Tensor):
    calls = []

    def oracle(W: torch.Tensor) -> torch.Tensor:
        calls.append(W.shape[0])
        return ((W - optimum) ** 2).sum(dim=1)

    return oracle, calls


def zo_step(opt, w: torch.Tensor, oracle):
    """One step through the optimiser's protocol: a per-image optimiser sees w as one image's (3, 2, 2) prompt and
    the same losses, per image."""
    if not opt.per_image:
        return opt.step(w, oracle)
    return opt.step_prompts(w, lambda v: v.view(1, 3, 2, 2), lambda P: oracle(P.reshape(P.shape[0], DIM)).view(-1, 1))


@pytest.mark.parametrize("cls", registered(ZO_REGISTRY))
def test_optimiser_makes_one_oracle_call_per_step_and_decreases_a_quadratic(cls):
    optimum = torch.linspace(-1, 1, DIM)
    oracle, calls = quadratic(optimum)
    opt = cls.example(DIM)
    w = torch.zeros(DIM)
    start = float(((w - optimum) ** 2).sum())
    for _ in range(150):
        step = zo_step(opt, w, oracle)
        w = step.w
    assert calls == [opt.queries_per_step] * 150
    assert opt.k == 150
    assert float(((w - optimum) ** 2).sum()) < 0.5 * start


@pytest.mark.parametrize("cls", registered(ZO_REGISTRY))
def test_optimiser_resumes_bit_for_bit(cls):
    optimum = torch.linspace(-1, 1, DIM)
    oracle, _ = quadratic(optimum)
    straight = cls.example(DIM, seed=5)
    w = torch.zeros(DIM)
    for _ in range(10):
        w = zo_step(straight, w, oracle).w
    state = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in straight.state_dict().items()}
    resumed = cls.example(DIM, seed=99)
    resumed.load_state_dict(state)
    w_resumed = w.clone()
    for _ in range(10):
        w = zo_step(straight, w, oracle).w
        w_resumed = zo_step(resumed, w_resumed, oracle).w
    assert torch.equal(w, w_resumed)


# ---------------------------------------------------------------- targets


@pytest.fixture(params=registered(TARGET_REGISTRY), scope="module")
def target(request):
    return request.param.example()


@pytest.mark.parametrize("n, max_batch", [(7, 0), (7, 3), (6, 3), (1, 5)])
def test_target_counts_images_and_calls_exactly(target, n, max_batch):
    target.max_batch = max_batch
    before_images, before_calls = target.counter.images("contract"), target.counter.calls("contract")
    logits = target(torch.randn(n, 3, target.input_size, target.input_size), split="contract")
    target.max_batch = 0
    assert logits.shape == (n, target.num_classes) and logits.dtype == torch.float32
    assert target.counter.images("contract") - before_images == n
    expected_calls = 1 if max_batch == 0 else math.ceil(n / max_batch)
    assert target.counter.calls("contract") - before_calls == expected_calls


def test_target_exposes_no_parameters(target):
    assert not isinstance(target, torch.nn.Module)
    assert not hasattr(target, "parameters")
    assert target.describe()


# ---------------------------------------------------------------- methods and config keys


@pytest.mark.parametrize("name", TRAINER_REGISTRY.registered_names())
def test_every_method_has_a_label(name):
    cls = TRAINER_REGISTRY.get(name)
    if cls.__module__.startswith("tests."):
        pytest.skip("a test's own CoOp-style trainer")
    assert getattr(cls, "label", ""), f"{name} must set the label users see in tables"


def test_every_declared_key_has_a_meaning_and_a_valid_default():
    from dassl.config import get_cfg_default

    cfg = extend_cfg(get_cfg_default())
    validate_cfg(cfg)
    for key in declared_keys():
        assert key.help.strip(), f"{key.name} needs a one-line meaning"
        allowed = key.allowed()
        assert not allowed or key.default in allowed, f"{key.name} default {key.default!r} not in {allowed}"
        assert key.valid is None or key.valid(key.default), f"{key.name} default {key.default!r} not {key.valid}"


def test_a_disallowed_value_names_the_key_and_the_choices():
    from dassl.config import get_cfg_default

    cfg = extend_cfg(get_cfg_default())
    cfg.TRAINER.VPOUR.OPT_TYPE = "adam"
    with pytest.raises(ValueError, match=r"TRAINER\.VPOUR\.OPT_TYPE must be one of .*spsa-gc.*got 'adam'"):
        validate_cfg(cfg)


def test_the_toolkit_version_is_defined_once_in_pyproject():
    from pathlib import Path

    import tomllib

    import trainers

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert trainers.__version__ == pyproject["project"]["version"]


@pytest.mark.parametrize(
    "config",
    sorted(str(p) for p in Path(__file__).parents[1].glob("configs/*/*.yaml") if p.parent.name != "paper")
    + sorted(str(p) for p in Path(__file__).parents[1].glob("configs/trainers/*/*.yaml")),
)
def test_every_shipped_config_holds_allowed_values(config):
    from dassl.config import get_cfg_default

    cfg = extend_cfg(get_cfg_default())
    cfg.merge_from_file(config)
    validate_cfg(cfg)
