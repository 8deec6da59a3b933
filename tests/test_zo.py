"""Zeroth-order optimisers: hand-computed steps, gain schedules, query protocol, skipping and exact resumption."""

import io
import math

import pytest
import torch

from trainers.zo import RGF, SPSA, ZOStep, poly_decay_lr, spsa_gains

DIM = 8
SEED = 3
PARAMS = [1.0, 0.01, 0.05, 0.602, 0.101]  # o, c, a, alpha, gamma


def make_quadratic(dim: int = DIM):
    """f(w) = 1/2 ||A w - b||^2 evaluated row-wise on a (P, d) batch."""
    g = torch.Generator().manual_seed(0)
    A = torch.eye(dim) + 0.1 * torch.randn(dim, dim, generator=g)
    b = torch.randn(dim, generator=g)
    return lambda W: 0.5 * ((W @ A.T - b) ** 2).sum(dim=1)


class RecordingOracle:
    """Loss oracle that records every batch of points it is asked about."""

    def __init__(self, fn):
        self.fn = fn
        self.calls = []

    def __call__(self, W):
        self.calls.append(W.clone())
        return self.fn(W)


def spsa_directions(generator, k_dirs, dim=DIM):
    """Recompute segmented-uniform directions in the documented draw order."""
    magnitude = torch.rand(k_dirs, dim, generator=generator) * 0.5 + 0.5
    sign = torch.randint(0, 2, (k_dirs, dim), generator=generator).float() * 2 - 1
    return sign * magnitude


def rgf_directions(generator, q, sigma, dim=DIM):
    u = torch.randn(q, dim, generator=generator) * sigma
    return u / u.norm(dim=1, keepdim=True)


def start_point():
    return torch.linspace(-1.0, 1.0, DIM)


def hand_spsa_grad(losses, delta, c_k, one_sided):
    """SPSA estimate from the oracle's losses, one direction at a time."""
    grads = []
    for j, d_j in enumerate(delta):
        if one_sided:
            slope = (losses[1 + j] - losses[0]) / c_k
        else:
            slope = (losses[2 * j] - losses[2 * j + 1]) / (2 * c_k)
        grads.append(slope / d_j)
    return torch.stack(grads).mean(dim=0)


def close(a, b):
    return torch.allclose(a, b, rtol=1e-5, atol=1e-7)


def test_gain_schedules():
    a_1, c_1 = spsa_gains(1, [1.0, 0.01, 0.01, 0.4, 0.2])
    assert a_1 == pytest.approx(0.01 / 2**0.4) and a_1 == pytest.approx(0.0075786, rel=1e-4)
    assert c_1 == pytest.approx(0.01)
    a_10, c_10 = spsa_gains(10, [1.0, 0.005, 0.01, 0.4, 0.2])
    assert a_10 == pytest.approx(0.01 / 11**0.4)
    assert c_10 == pytest.approx(0.005 / 10**0.2)
    a_5, c_5 = spsa_gains(5, [0.0, 0.001, 40.0, 0.6, 0.1])
    assert a_5 == pytest.approx(40.0 / 5**0.6) and c_5 == pytest.approx(0.001 / 5**0.1)


def test_poly_decay_lr():
    lrs, total = (10.0, 0.1), 100
    assert poly_decay_lr(1, total, lrs) == pytest.approx(9.9 * (1 - 1 / 90) ** 0.9 + 0.1)
    assert poly_decay_lr(45, total, lrs) == pytest.approx(9.9 * 0.5**0.9 + 0.1)
    assert poly_decay_lr(90, total, lrs) == pytest.approx(0.1)
    assert poly_decay_lr(100, total, lrs) == pytest.approx(0.1)
    assert poly_decay_lr(1, 1, lrs) == pytest.approx(0.1)


def test_reported_gain_follows_schedule():
    f = make_quadratic()
    opt = SPSA(DIM, PARAMS, seed=SEED)
    w = start_point()
    for k in range(1, 6):
        result = opt.step(w, f)
        assert result.gain == pytest.approx(spsa_gains(k, PARAMS)[0])
        w = result.w
    rgf = RGF(DIM, lrs=(1.0, 0.01), total_steps=10, seed=SEED)
    for k in range(1, 4):
        assert rgf.step(w, f).gain == pytest.approx(poly_decay_lr(k, 10, (1.0, 0.01)))


@pytest.mark.parametrize("gc", [True, False])
def test_two_sided_spsa_step_matches_hand_computation(gc):
    f = make_quadratic()
    oracle = RecordingOracle(f)
    opt = SPSA(DIM, PARAMS, sp_avg=3, gc=gc, moms=0.9, seed=SEED)
    w = start_point()
    result = opt.step(w, oracle)

    delta = spsa_directions(torch.Generator().manual_seed(SEED), 3)
    a_1, c_1 = PARAMS[2] / (1 + PARAMS[0]) ** PARAMS[3], PARAMS[1]
    expected_points = torch.stack(
        [
            w + c_1 * delta[0],
            w - c_1 * delta[0],
            w + c_1 * delta[1],
            w - c_1 * delta[1],
            w + c_1 * delta[2],
            w - c_1 * delta[2],
        ]
    )
    assert len(oracle.calls) == 1 and close(oracle.calls[0], expected_points)
    assert close(result.losses, f(expected_points))
    grad = hand_spsa_grad(result.losses, delta, c_1, one_sided=False)
    assert close(result.grad, grad)
    update = grad + 0.9 * grad if gc else grad
    assert close(result.w, w - a_1 * update)
    assert not result.skipped and opt.k == 1


def test_one_sided_spsa_step_matches_hand_computation():
    f = make_quadratic()
    oracle = RecordingOracle(f)
    opt = SPSA(DIM, PARAMS, sp_avg=4, gc=False, one_sided=True, seed=SEED)
    assert opt.queries_per_step == 5
    w = start_point()
    result = opt.step(w, oracle)

    delta = spsa_directions(torch.Generator().manual_seed(SEED), 4)
    a_1, c_1 = spsa_gains(1, PARAMS)
    expected_points = torch.cat([w[None], w + c_1 * delta])
    assert close(oracle.calls[0], expected_points)
    assert close(result.losses, f(expected_points))
    grad = hand_spsa_grad(result.losses, delta, c_1, one_sided=True)
    assert close(result.grad, grad)
    assert close(result.w, w - a_1 * grad)


def test_gradient_clipping():
    f = make_quadratic()
    w = start_point()
    unclipped = SPSA(DIM, PARAMS, gc=True, seed=SEED).step(w, f)
    max_norm = 0.5 * unclipped.grad.norm().item()
    clipped = SPSA(DIM, PARAMS, gc=True, clip_norm=max_norm, seed=SEED).step(w, f)
    assert clipped.grad.norm().item() == pytest.approx(max_norm, rel=1e-5)
    assert close(clipped.grad, unclipped.grad * (max_norm / unclipped.grad.norm()))
    assert close(clipped.w, w - clipped.gain * (clipped.grad + 0.9 * clipped.grad))
    loose = SPSA(DIM, PARAMS, gc=True, clip_norm=10 * max_norm, seed=SEED).step(w, f)
    assert torch.equal(loose.grad, unclipped.grad)


def test_spsa_gc_momentum_over_three_steps():
    f = make_quadratic()
    moms = 0.7
    oracle = RecordingOracle(f)
    opt = SPSA(DIM, PARAMS, sp_avg=2, gc=True, moms=moms, seed=SEED)
    generator = torch.Generator().manual_seed(SEED)
    w_opt = w_hand = start_point()
    m = None
    for k in (1, 2, 3):
        result = opt.step(w_opt, oracle)
        a_k, c_k = PARAMS[2] / (k + PARAMS[0]) ** PARAMS[3], PARAMS[1] / k ** PARAMS[4]
        delta = spsa_directions(generator, 2)
        points = torch.stack(
            [w_hand + c_k * delta[0], w_hand - c_k * delta[0], w_hand + c_k * delta[1], w_hand - c_k * delta[1]]
        )
        assert close(oracle.calls[-1], points)
        grad = hand_spsa_grad(result.losses, delta, c_k, one_sided=False)
        m = grad if k == 1 else moms * m + grad
        w_hand = w_hand - a_k * (grad + moms * m)
        assert close(result.grad, grad)
        assert close(opt.state_dict()["momentum"], m)
        assert close(result.w, w_hand)
        w_opt = result.w
    assert opt.k == 3


def test_rgf_step_matches_hand_computation():
    f = make_quadratic()
    oracle = RecordingOracle(f)
    smooth, sigma, lrs, total = 0.01, 2.0, (0.5, 0.01), 20
    opt = RGF(DIM, sp_avg=3, smooth=smooth, sigma=sigma, lrs=lrs, total_steps=total, seed=SEED)
    w = start_point()
    result = opt.step(w, oracle)

    u = rgf_directions(torch.Generator().manual_seed(SEED), 3, sigma)
    assert torch.allclose(u.norm(dim=1), torch.ones(3))
    expected_points = torch.cat([w[None], w + smooth * u])
    assert len(oracle.calls) == 1 and close(oracle.calls[0], expected_points)
    assert close(result.losses, f(expected_points))
    losses = result.losses
    grad = sum((DIM / 3) * (losses[1 + j] - losses[0]) / smooth * u_j for j, u_j in enumerate(u))
    lr = (lrs[0] - lrs[1]) * (1 - 1 / (0.9 * total)) ** 0.9 + lrs[1]
    assert result.gain == pytest.approx(lr)
    assert close(result.grad, grad)
    assert close(result.w, w - lr * grad)


def optimisers():
    return {
        "spsa-gc": lambda: SPSA(DIM, PARAMS, gc=True, seed=SEED),
        "spsa": lambda: SPSA(DIM, [1.0, 0.01, 0.3, 0.602, 0.101], gc=False, seed=SEED),
        "spsa-one-sided": lambda: SPSA(DIM, [1.0, 0.01, 0.3, 0.602, 0.101], gc=False, one_sided=True, seed=SEED),
        "spsa-gc-clipped": lambda: SPSA(DIM, PARAMS, gc=True, clip_norm=1.0, seed=SEED),
        "rgf": lambda: RGF(DIM, sp_avg=5, lrs=(0.2, 0.01), total_steps=300, seed=SEED),
    }


@pytest.mark.parametrize("name", list(optimisers()))
def test_optimiser_decreases_quadratic(name):
    f = make_quadratic()
    opt = optimisers()[name]()
    w = start_point()
    initial = f(w[None]).item()
    for _ in range(300):
        w = opt.step(w, f).w
    assert f(w[None]).item() < 0.01 * initial


@pytest.mark.parametrize("name,expected", [("spsa-gc", 10), ("spsa-one-sided", 6), ("rgf", 6)])
def test_oracle_called_once_per_step_with_all_points(name, expected):
    f = make_quadratic()
    oracle = RecordingOracle(f)
    opt = optimisers()[name]()
    assert opt.queries_per_step == expected
    w = start_point()
    for step in range(1, 4):
        w = opt.step(w, oracle).w
        assert len(oracle.calls) == step
        assert oracle.calls[-1].shape == (expected, DIM) and oracle.calls[-1].dtype == torch.float32


@pytest.mark.parametrize("name", ["spsa-gc", "rgf"])
def test_non_finite_loss_skips_step(name):
    f = make_quadratic()
    opt = optimisers()[name]()
    w = start_point()
    for _ in range(2):
        w = opt.step(w, f).w
    before = opt.state_dict()

    def poisoned(W):
        losses = f(W)
        losses[1] = math.nan
        return losses

    result = opt.step(w, poisoned)
    after = opt.state_dict()
    assert result.skipped and torch.equal(result.w, w)
    assert torch.equal(result.grad, torch.zeros(DIM))
    assert torch.isnan(result.losses[1])
    assert after["k"] == before["k"] == 2
    if name == "spsa-gc":
        assert torch.equal(after["momentum"], before["momentum"])
    assert not torch.equal(after["generator"], before["generator"])  # documented: directions are consumed
    result = opt.step(w, f)
    assert not result.skipped and opt.k == 3


def test_oracle_shape_is_checked():
    opt = SPSA(DIM, PARAMS)
    with pytest.raises(ValueError, match="shape"):
        opt.step(start_point(), lambda W: torch.zeros(W.shape[0] + 1))
    with pytest.raises(ValueError, match="shape"):
        opt.step(torch.zeros(DIM + 1), lambda W: torch.zeros(W.shape[0]))


@pytest.mark.parametrize("name", ["spsa-gc", "spsa-one-sided", "rgf"])
def test_state_dict_round_trip_continues_bit_for_bit(name):
    f = make_quadratic()
    steps = 5
    straight = optimisers()[name]()
    w_straight = start_point()
    losses_straight = []
    for _ in range(2 * steps):
        result = straight.step(w_straight, f)
        w_straight = result.w
        losses_straight.append(result.losses)

    first = optimisers()[name]()
    w = start_point()
    losses = []
    for _ in range(steps):
        result = first.step(w, f)
        w = result.w
        losses.append(result.losses)
    buffer = io.BytesIO()
    torch.save({"opt": first.state_dict(), "w": w}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer)
    resumed = optimisers()[name]()
    resumed.load_state_dict(saved["opt"])
    w = saved["w"]
    for _ in range(steps):
        result = resumed.step(w, f)
        w = result.w
        losses.append(result.losses)

    assert resumed.k == straight.k == 2 * steps
    assert torch.equal(w, w_straight)
    assert all(torch.equal(a, b) for a, b in zip(losses, losses_straight))


def test_result_is_float32_and_does_not_modify_input():
    f = make_quadratic()
    w = start_point().double()
    original = w.clone()
    dtypes = []

    def oracle(W):
        dtypes.append(W.dtype)
        return f(W)

    result = SPSA(DIM, PARAMS).step(w, oracle)
    assert dtypes == [torch.float32]
    assert isinstance(result, ZOStep)
    assert result.w.dtype == torch.float32 and result.grad.dtype == torch.float32
    assert torch.equal(w, original)


def test_invalid_settings_raise():
    with pytest.raises(ValueError):
        SPSA(DIM, [1.0, 0.01, 0.05])
    with pytest.raises(ValueError):
        SPSA(DIM, PARAMS, sp_avg=0)
    with pytest.raises(ValueError):
        RGF(DIM, total_steps=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_run_draws_the_same_perturbations_as_cpu():
    f_cpu = make_quadratic()
    w_cpu = w_gpu = start_point()
    cpu, gpu = SPSA(DIM, PARAMS, seed=SEED), SPSA(DIM, PARAMS, seed=SEED)
    points = {}
    for _ in range(3):
        w_cpu = cpu.step(w_cpu, f_cpu).w

        def oracle(W):
            points.setdefault("device", W.device)
            return f_cpu(W.cpu()).to(W.device)

        w_gpu = gpu.step(w_gpu.to("cuda"), oracle).w
    assert points["device"].type == "cuda" and w_gpu.device.type == "cuda"
    assert torch.allclose(w_gpu.cpu(), w_cpu, rtol=1e-5, atol=1e-6)
