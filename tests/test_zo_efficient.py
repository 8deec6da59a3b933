"""The query-saving estimators: Gaussian, orthogonal and guided directions, sqrt(d) clipping, random subspaces and
per-image prompt-space SPSA (whose chain rule is checked against autograd on a differentiable stand-in)."""

import io
import math

import pytest
import torch
from torch import nn

from dassl.config import CfgNode
from trainers.zo import (
    SPSA,
    PromptSpaceSPSA,
    Subspace,
    build_zo,
    guided_gaussian,
    orthogonal_gaussian,
    prompt_directions,
    random_projection,
)
from trainers.zo.prompt_space import dct_rows

DIM = 8
SEED = 3
PARAMS = [1.0, 0.01, 0.05, 0.602, 0.101]


def make_quadratic(dim: int = DIM):
    g = torch.Generator().manual_seed(0)
    A = torch.eye(dim) + 0.1 * torch.randn(dim, dim, generator=g)
    b = torch.randn(dim, generator=g)
    return lambda W: 0.5 * ((W @ A.T - b) ** 2).sum(dim=1)


def quadratic_grad(w, dim=DIM):
    g = torch.Generator().manual_seed(0)
    A = torch.eye(dim) + 0.1 * torch.randn(dim, dim, generator=g)
    b = torch.randn(dim, generator=g)
    return A.T @ (A @ w - b)


def start_point(dim=DIM):
    return torch.linspace(-1.0, 1.0, dim)


# ---------------------------------------------------------------- parameter-space directions


@pytest.mark.parametrize("kind", ["gaussian", "orthogonal"])
def test_gaussian_family_step_matches_hand_computation(kind):
    f = make_quadratic()
    opt = SPSA(DIM, PARAMS, sp_avg=3, gc=False, seed=SEED, directions=kind)
    w = start_point()
    gen = torch.Generator().manual_seed(SEED)
    if kind == "gaussian":
        u = torch.randn(3, DIM, generator=gen)
    else:
        u = orthogonal_gaussian(3, DIM, gen)
    a_k, c_k = opt.gains.at(1)
    result = opt.step(w, f)
    points = torch.stack([torch.stack([w + c_k * u_j, w - c_k * u_j]) for u_j in u]).view(6, DIM)
    assert torch.allclose(f(points), result.losses)  # the oracle was asked at w +- c_k u_j, pair by pair
    slopes = [(result.losses[2 * j] - result.losses[2 * j + 1]) / (2 * c_k) for j in range(3)]
    expected = torch.stack([s * u_j for s, u_j in zip(slopes, u)]).mean(0)
    assert torch.allclose(result.grad, expected, rtol=1e-5, atol=1e-6)
    assert torch.allclose(result.w, w - a_k * expected, rtol=1e-5, atol=1e-6)


def test_orthogonal_directions_are_orthogonal_with_norm_sqrt_d():
    u = orthogonal_gaussian(5, 40, torch.Generator().manual_seed(0))
    gram = u @ u.T
    assert torch.allclose(gram, 40 * torch.eye(5), atol=1e-3)
    with pytest.raises(ValueError, match="orthogonal"):
        orthogonal_gaussian(9, 8, torch.Generator())
    with pytest.raises(ValueError, match="orthogonal"):
        SPSA(DIM, PARAMS, sp_avg=9, directions="orthogonal")


def test_guided_directions_have_the_documented_covariance():
    dim, alpha = 6, 0.25
    previous = torch.tensor([3.0, 0, 0, 4.0, 0, 0])
    u = previous / previous.norm()
    draws = guided_gaussian(200_000, dim, alpha, previous, torch.Generator().manual_seed(1))
    cov = draws.T @ draws / draws.shape[0]
    expected = alpha * torch.eye(dim) + (1 - alpha) * dim * torch.outer(u, u)
    assert torch.allclose(cov, expected, atol=0.05)
    assert abs(torch.trace(cov).item() - dim) < 0.1  # the same total scale as a standard Gaussian
    # before any estimate exists they are the plain Gaussian draws (and the extra draw is still consumed)
    g1, g2 = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    assert torch.equal(guided_gaussian(3, dim, alpha, None, g1), torch.randn(3, dim, generator=g2))
    assert torch.equal(g1.get_state(), (torch.randn(3, generator=g2), g2.get_state())[1])


def test_guided_spsa_uses_the_last_estimate_and_resumes_exactly():
    f = make_quadratic()

    def make():
        return SPSA(DIM, PARAMS, sp_avg=2, seed=SEED, directions="guided", history_alpha=0.5)

    straight, w_straight = make(), start_point()
    for _ in range(6):
        w_straight = straight.step(w_straight, f).w
    first, w = make(), start_point()
    for _ in range(3):
        w = first.step(w, f).w
    assert first.state_dict()["previous"] is not None
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    resumed = make()
    resumed.load_state_dict(torch.load(buffer))
    for _ in range(3):
        w = resumed.step(w, f).w
    assert torch.equal(w, w_straight)


def test_clip_at_sqrt_dim():
    opt = SPSA(100, PARAMS, sp_avg=1, gc=False, clip_norm=-1, seed=SEED)
    assert opt.clip_norm == 10.0
    steep = lambda W: 1e4 * W.sum(dim=1)  # noqa: E731 - a slope of 1e4 in every coordinate
    result = opt.step(torch.zeros(100), steep)
    assert abs(result.grad.norm().item() - 10.0) < 1e-3
    with pytest.raises(ValueError, match="clip_norm"):
        SPSA(DIM, PARAMS, clip_norm=-2)


@pytest.mark.parametrize("kind", ["gaussian", "orthogonal", "guided"])
def test_gaussian_families_decrease_a_quadratic(kind):
    f = make_quadratic()
    opt = SPSA(DIM, [1.0, 0.01, 0.02, 0.602, 0.101], sp_avg=2, seed=SEED, directions=kind)
    w = start_point()
    initial = f(w[None]).item()
    for _ in range(300):
        w = opt.step(w, f).w
    assert f(w[None]).item() < 0.01 * initial


# ---------------------------------------------------------------- subspace


def node(**values) -> CfgNode:
    base = {
        "SPSA_PARAMS": PARAMS,
        "SP_AVG": 2,
        "MOMS": 0.9,
        "ONE_SIDED": False,
        "CLIP_NORM": 0.0,
        "DIRECTIONS": "segmented",
        "HISTORY_ALPHA": 0.5,
        "SUBSPACE_DIM": 0,
        "PROMPT_BASIS": "dct",
        "PROMPT_FREQ": 7,
    }
    base.update(values)
    return CfgNode(base)


def test_subspace_queries_points_of_w0_plus_pz():
    dim, m = 30, 4
    opt = build_zo("spsa-gc", node(SUBSPACE_DIM=m), dim=dim, seed=SEED, total_steps=10)
    assert isinstance(opt, Subspace) and opt.queries_per_step == 4 and opt.inner.dim == m
    P = random_projection(dim, m, SEED)
    assert P.shape == (dim, m) and abs(P.var().item() - 1 / m) < 0.1 / m
    asked = []

    def oracle(W):
        asked.append(W.clone())
        return (W**2).sum(1)

    w0 = torch.linspace(-1, 1, dim)
    w = w0
    for _ in range(3):
        step = opt.step(w, oracle)
        w = step.w
    for W in asked:  # every queried point lies in the affine subspace w0 + span(P)
        z = torch.linalg.lstsq(P, (W - w0).T).solution
        assert torch.allclose(P @ z, (W - w0).T, atol=1e-4)
    assert torch.allclose(w, w0 + P @ opt.z, atol=1e-6)
    assert torch.allclose(step.grad, P @ (step.grad @ torch.linalg.pinv(P).T), atol=1e-4)  # grad lies in span(P)
    assert opt.k == 3


def test_subspace_resumes_exactly_and_refuses_another_projection():
    dim, m = 30, 4
    f = make_quadratic(dim)

    def make(seed=SEED):
        return build_zo("spsa-gc", node(SUBSPACE_DIM=m), dim=dim, seed=seed, total_steps=10)

    straight, w_straight = make(), start_point(dim)
    for _ in range(6):
        w_straight = straight.step(w_straight, f).w
    first, w = make(), start_point(dim)
    for _ in range(3):
        w = first.step(w, f).w
    state = first.state_dict()
    resumed = make()
    resumed.load_state_dict(state)
    for _ in range(3):
        w = resumed.step(w, f).w
    assert torch.equal(w, w_straight)
    with pytest.raises(ValueError, match="projection"):
        make(seed=SEED + 1).load_state_dict(state)


def test_subspace_dimension_must_compress():
    with pytest.raises(ValueError, match="SUBSPACE_DIM 30 is not smaller than the 30"):
        build_zo("spsa-gc", node(SUBSPACE_DIM=30), dim=30, seed=0, total_steps=1)
    with pytest.raises(ValueError, match="SUBSPACE_DIM applies to parameter-space"):
        build_zo("prompt-spsa-gc", node(SUBSPACE_DIM=4), dim=30, seed=0, total_steps=1)


def test_subspace_decreases_a_quadratic_in_its_span():
    dim, m = 40, 8
    P = random_projection(dim, m, SEED)
    target = P @ torch.randn(m, generator=torch.Generator().manual_seed(5))  # the optimum lies in the subspace
    f = lambda W: 0.5 * ((W - target) ** 2).sum(1)  # noqa: E731
    opt = build_zo("spsa-gc", node(SUBSPACE_DIM=m, SPSA_PARAMS=[1.0, 0.01, 0.01, 0.602, 0.101]), dim, SEED, 1)
    w = torch.zeros(dim)
    initial = f(w[None]).item()
    for _ in range(300):
        w = opt.step(w, f).w
    assert f(w[None]).item() < 0.01 * initial


# ---------------------------------------------------------------- per-image prompt-space SPSA

N, C, H = 5, 3, 8
D_W = 2 * 6


class StandIn(nn.Module):
    """A differentiable prompter stand-in: prompts = BatchNorm(tanh(features @ W1) @ W2) as (N, C, H, H); w holds
    W1 (4 x 2) and W2 (2 x C*H*H) flattened, so the chain rule runs through a non-linearity and batch statistics."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(11)
        self.features = torch.randn(N, 4, generator=g)
        self.proj = torch.randn(2, C * H * H, generator=g) * 0.5
        self.norm = nn.BatchNorm1d(C * H * H)

    def dim(self):
        return 4 * 2 + 2

    def prompts(self, w):
        W1 = w[:8].view(4, 2)
        scale = w[8:10]
        hidden = torch.tanh(self.features @ W1) * scale
        return self.norm(hidden @ self.proj).view(N, C, H, H)


def per_image_quadratic(t=None):
    """l_i(p) = 1/2 sum(a_i * (p_i - t_i)^2): two-sided differences are its exact directional derivatives."""
    g = torch.Generator().manual_seed(12)
    a = torch.rand(N, C, H, H, generator=g) + 0.5
    t = torch.randn(N, C, H, H, generator=g) if t is None else t

    def losses(prompts):  # (Q, N, C, H, W) -> (Q, N)
        return 0.5 * (a * (prompts - t) ** 2).flatten(2).sum(2)

    def grad(prompts):  # (N, C, H, W) -> dl_i/dp_i
        return a * (prompts - t)

    return losses, grad


def prompt_opt(**kwargs):
    args = dict(sp_avg=3, gc=False, one_sided=False, basis="dct", freq=3, seed=SEED)
    args.update(kwargs)
    return PromptSpaceSPSA(10, [1.0, 0.01, 0.05, 0.602, 0.101], **args)


@pytest.mark.parametrize("basis", ["dct", "pixel"])
def test_per_image_estimate_is_the_chain_rule_of_the_per_image_slopes(basis):
    """grad = J^T (mean_j slope_ij v_ij / N) with J from autograd, slopes exact on the quadratic."""
    model = StandIn().train()
    losses_of, grad_of = per_image_quadratic()
    opt = PromptSpaceSPSA(10, [1.0, 0.5, 0.05, 0.602, 0.101], sp_avg=3, gc=False, basis=basis, freq=3, seed=SEED)
    w = torch.linspace(-0.5, 0.5, model.dim())
    gen = torch.Generator().manual_seed(SEED)
    step = opt.step_prompts(w, model.prompts, losses_of)

    V = prompt_directions(3, (N, C, H, H), basis, 3, gen)
    leaf = w.clone().requires_grad_(True)
    prompts = model.prompts(leaf)
    g = grad_of(prompts.detach())
    slopes = (V * g).flatten(2).sum(2)  # exact directional derivatives v_ij . dl_i/dp_i
    G = (slopes.view(3, N, 1, 1, 1) * V).mean(0) / N
    (expected,) = torch.autograd.grad(prompts, leaf, G)
    # c = 0.5: the differences are exact on a quadratic whatever c, and float32 round-off stays far below 1e-4
    assert (step.grad - expected).norm() < 1e-4 * expected.norm()
    a_k = opt.gains.at(1)[0]
    assert (step.w - (w - a_k * expected)).norm() < 1e-4 * (a_k * expected).norm()
    assert step.losses.shape == (6,)


def test_per_image_estimate_is_unbiased_for_the_projected_gradient():
    """Many directions at one point: the estimate approaches autograd's gradient of the mean loss (pixel basis),
    or of the loss seen through the low-frequency projector (dct)."""
    model = StandIn().train()
    losses_of, grad_of = per_image_quadratic()
    w = torch.linspace(-0.5, 0.5, model.dim())
    leaf = w.clone().requires_grad_(True)
    prompts = model.prompts(leaf)
    g = grad_of(prompts.detach())
    (true,) = torch.autograd.grad(prompts, leaf, g / N)
    D = dct_rows(H, 3)
    g_low = torch.einsum("kh,nchw,lw->nckl", D, g, D)
    projected = torch.einsum("kh,nckl,lw->nchw", D, g_low, D)
    (true_low,) = torch.autograd.grad(model.prompts(leaf), leaf, projected / N)
    for basis, reference in (("pixel", true), ("dct", true_low)):
        opt = PromptSpaceSPSA(10, [1.0, 0.5, 0.05, 0.602, 0.101], sp_avg=20_000, gc=False, basis=basis, freq=3)
        step = opt.step_prompts(w, model.prompts, losses_of)
        cosine = torch.nn.functional.cosine_similarity(step.grad, reference, dim=0).item()
        assert cosine > 0.97, (basis, cosine)
    assert torch.nn.functional.cosine_similarity(true, true_low, dim=0).item() < 0.99  # the projection matters


def test_dct_basis_is_orthonormal_and_its_directions_low_frequency():
    D = dct_rows(16, 16)
    assert torch.allclose(D @ D.T, torch.eye(16), atol=1e-5)
    V = prompt_directions(2, (3, 3, 16, 16), "dct", 4, torch.Generator().manual_seed(0))
    coeffs = torch.einsum("kh,qnchw,lw->qnckl", D, V, D)
    assert coeffs[..., 4:, :].abs().max() < 1e-4 and coeffs[..., :, 4:].abs().max() < 1e-4
    assert coeffs[..., :4, :4].abs().max() > 0.1


def test_one_sided_per_image_queries_the_prompts_first_and_counts_q_plus_one():
    model = StandIn().train()
    losses_of, _ = per_image_quadratic()
    opt = prompt_opt(sp_avg=2, one_sided=True)
    assert opt.queries_per_step == 3
    asked = []

    def oracle(points):
        asked.append(points.clone())
        return losses_of(points)

    w = torch.linspace(-0.5, 0.5, model.dim())
    model_eval = StandIn().eval()  # eval mode: the prompts are a pure function of w, to compare
    model.norm.load_state_dict(model_eval.norm.state_dict())
    opt.step_prompts(w, model_eval.prompts, oracle)
    assert len(asked) == 1 and asked[0].shape == (3, N, C, H, H)
    assert torch.equal(asked[0][0], model_eval.prompts(w).detach())
    with pytest.raises(TypeError, match="step_prompts"):
        opt.step(w, lambda W: W.sum(1))


def test_per_image_spsa_decreases_the_loss_and_resumes_exactly():
    model = StandIn().eval()
    reachable = model.prompts(torch.linspace(0.5, -0.3, model.dim())).detach()
    losses_of, _ = per_image_quadratic(reachable)

    def make():
        return PromptSpaceSPSA(10, [1.0, 0.05, 0.001, 0.602, 0.101], sp_avg=1, one_sided=True, basis="pixel", seed=SEED)

    def run(opt, model, w, steps):
        for _ in range(steps):
            w = opt.step_prompts(w, model.prompts, losses_of).w
        return w

    w0 = torch.linspace(-0.5, 0.5, model.dim())
    straight = run(make(), model, w0, 200)
    mean_loss = lambda w: losses_of(model.prompts(w).detach()[None]).mean().item()  # noqa: E731
    assert mean_loss(straight) < 0.2 * mean_loss(w0)

    first = make()
    w = run(first, model, w0, 100)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    resumed = make()
    resumed.load_state_dict(torch.load(buffer))
    assert torch.equal(run(resumed, model, w, 100), straight)


def test_per_image_non_finite_losses_skip_the_step():
    model = StandIn().eval()
    losses_of, _ = per_image_quadratic()
    opt = prompt_opt()
    w = torch.linspace(-0.5, 0.5, model.dim())

    def poisoned(points):
        out = losses_of(points)
        out[1, 2] = math.nan
        return out

    step = opt.step_prompts(w, model.prompts, poisoned)
    assert step.skipped and torch.equal(step.w, w) and opt.k == 0
    with pytest.raises(ValueError, match="per-image loss oracle must return shape"):
        opt.step_prompts(w, model.prompts, lambda p: losses_of(p).mean(1))


def test_adam_update_matches_hand_computation_and_resumes():
    f = make_quadratic()
    opt = SPSA(DIM, PARAMS, sp_avg=2, seed=SEED, update="adam")
    w = start_point()
    m = v = torch.zeros(DIM)
    for k in (1, 2, 3):
        step = opt.step(w, f)
        g = step.grad
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        direction = (m / (1 - 0.9**k)) / ((v / (1 - 0.999**k)).sqrt() + 1e-8)
        assert torch.allclose(step.w, w - opt.gains.at(k)[0] * direction, rtol=1e-5, atol=1e-7)
        w = step.w
    state = opt.state_dict()
    assert torch.allclose(state["second"], v) and torch.allclose(state["momentum"], m)
    resumed = SPSA(DIM, PARAMS, sp_avg=2, seed=SEED + 1, update="adam")
    resumed.load_state_dict(state)
    assert torch.equal(resumed.step(w, f).w, opt.step(w, f).w)
    with pytest.raises(ValueError, match="update"):
        SPSA(DIM, PARAMS, update="rmsprop")


def test_per_image_refuses_parameter_space_direction_settings():
    with pytest.raises(ValueError, match="leave DIRECTIONS at segmented"):
        build_zo("prompt-spsa-gc", node(DIRECTIONS="gaussian"), dim=30, seed=0, total_steps=1)
    with pytest.raises(ValueError, match="basis"):
        PromptSpaceSPSA(10, PARAMS, basis="wavelet")
    opt = build_zo("prompt-spsa-gc", node(SP_AVG=1, ONE_SIDED=True, PROMPT_FREQ=5), dim=30, seed=0, total_steps=1)
    assert opt.per_image and opt.queries_per_step == 2 and opt.freq == 5 and opt.basis == "dct"


def test_dct_directions_with_a_floor_cover_every_frequency():
    """covariance P_low + floor I: the low block and, with floor > 0, every other direction too (no bias)."""
    D = dct_rows(8, 3)
    low = torch.kron(D.T @ D, D.T @ D)
    for floor in (0.0, 0.1):
        V = prompt_directions(40_000, (1, 1, 8, 8), "dct", 3, torch.Generator().manual_seed(0), floor).reshape(-1, 64)
        cov = V.T @ V / V.shape[0]
        assert torch.allclose(cov, low + floor * torch.eye(64), atol=0.03)
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    assert torch.equal(
        prompt_directions(2, (3, 3, 8, 8), "dct", 3, g1), prompt_directions(2, (3, 3, 8, 8), "dct", 3, g2, 0.0)
    )
    with pytest.raises(ValueError, match="floor"):
        PromptSpaceSPSA(10, PARAMS, floor=-1.0)
