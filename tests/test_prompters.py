"""PadPrompter, Program and the pixel-range clamp: counts, flat-vector access, batched rendering, hand computations."""

import pytest
import torch

from trainers.prompters import CLIP_MEAN, CLIP_STD, PadPrompter, Program, clip_to_pixel_range

MEAN = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(CLIP_STD).view(1, 3, 1, 1)


def normalised_images(n, size, seed=0):
    pixels = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))
    return (pixels - MEAN) / STD


def random_flats(prompter, p, seed=1):
    return torch.randn(p, prompter.flat_dim(), generator=torch.Generator().manual_seed(seed))


def test_clip_to_pixel_range_bounds_match_reference():
    x = torch.tensor([-100.0, 100.0]).view(1, 1, 2, 1).expand(1, 3, 2, 1)
    clamped = clip_to_pixel_range(x, CLIP_MEAN, CLIP_STD)
    low, high = clamped[0, :, 0, 0], clamped[0, :, 1, 0]
    assert torch.allclose(low, torch.tensor([-1.79226253, -1.75209713, -1.48021977]))
    assert torch.allclose(high, torch.tensor([1.93033625, 2.07488384, 2.14589699]))


def test_clip_to_pixel_range_equals_clamping_pixels():
    x = 3 * torch.randn(2, 3, 8, 8)
    expected = ((x * STD + MEAN).clamp(0, 1) - MEAN) / STD
    assert torch.allclose(clip_to_pixel_range(x, CLIP_MEAN, CLIP_STD), expected, atol=1e-6)


def test_pad_prompter_counts_and_checkpoint_keys():
    prompter = PadPrompter(224, 30)
    assert prompter.num_learnable() == 69_840 == prompter.flat_dim()
    assert list(prompter.state_dict()) == ["pad_up", "pad_down", "pad_left", "pad_right"]
    assert prompter.pad_up.shape == prompter.pad_down.shape == (1, 3, 30, 224)
    assert prompter.pad_left.shape == prompter.pad_right.shape == (1, 3, 164, 30)


def test_pad_prompter_frame_is_added_and_centre_untouched():
    prompter = PadPrompter(32, 4)
    x = normalised_images(2, 32)
    out = prompter(x)
    assert torch.equal(out[:, :, 4:28, 4:28], x[:, :, 4:28, 4:28])
    added = out - x
    assert torch.allclose(added[:, :, :4, :], prompter.pad_up.detach().expand(2, -1, -1, -1), atol=1e-6)
    assert torch.allclose(added[:, :, 28:, :], prompter.pad_down.detach().expand(2, -1, -1, -1), atol=1e-6)
    assert torch.allclose(added[:, :, 4:28, :4], prompter.pad_left.detach().expand(2, -1, -1, -1), atol=1e-6)
    assert torch.allclose(added[:, :, 4:28, 28:], prompter.pad_right.detach().expand(2, -1, -1, -1), atol=1e-6)


def test_pad_prompter_forward_is_differentiable():
    prompter = PadPrompter(32, 4)
    prompter(normalised_images(2, 32)).sum().backward()
    assert all(p.grad is not None and torch.all(p.grad == 2) for p in prompter.parameters())


@pytest.mark.parametrize("make", [lambda: PadPrompter(32, 4), lambda: Program(40, 30)])
def test_flat_round_trip_follows_parameter_order(make):
    prompter = make()
    w = random_flats(prompter, 1)[0]
    prompter.set_flat(w)
    assert torch.equal(prompter.get_flat(), w)
    assert torch.equal(torch.nn.utils.parameters_to_vector(prompter.parameters()), w)
    flat = prompter.get_flat()
    flat.add_(1.0)
    assert torch.equal(prompter.get_flat(), w), "get_flat must return a copy"
    with pytest.raises(ValueError):
        prompter.set_flat(torch.zeros(prompter.flat_dim() + 1))


@pytest.mark.parametrize("make,size", [(lambda: PadPrompter(32, 4), 32), (lambda: Program(40, 30), 30)])
def test_apply_many_equals_looping_forward(make, size):
    prompter = make()
    x = normalised_images(3, size)
    W = random_flats(prompter, 4)
    with torch.no_grad():
        batched = prompter.apply_many(prompter.prepare(x), W)
        looped = []
        for w in W:
            prompter.set_flat(w)
            looped.append(prompter(x))
    assert batched.shape == (4 * 3, 3, prompter(x).shape[-1], prompter(x).shape[-1])
    assert torch.equal(batched, torch.cat(looped))
    assert not batched.requires_grad


def test_apply_many_builds_no_graph_and_leaves_parameters_alone():
    prompter = PadPrompter(32, 4)
    before = prompter.get_flat()
    W = random_flats(prompter, 2).requires_grad_(True)
    out = prompter.apply_many(prompter.prepare(normalised_images(2, 32)), W)
    assert out.grad_fn is None
    assert torch.equal(prompter.get_flat(), before)


def test_program_counts():
    program = Program(224, 194)
    assert program.num_learnable() == 37_620
    assert program.flat_dim() == 150_528
    assert list(program.state_dict()) == ["program"]
    assert program.offset == 15
    assert program.mask[:, 15:209, 15:209].sum() == 0 and program.mask.sum() == 37_620


def test_program_matches_hand_computation():
    program = Program(40, 30)
    x = normalised_images(2, 30)
    out = program(x)
    canvas = torch.zeros(2, 3, 40, 40)
    canvas[:, :, 5:35, 5:35] = x * STD + MEAN
    frame = torch.sigmoid(program.program.detach()).clone()
    frame[:, 5:35, 5:35] = 0
    expected = (canvas + frame - MEAN) / STD
    assert out.shape == (2, 3, 40, 40)
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.allclose(out[:, :, 5:35, 5:35], x, atol=1e-5), "the inner window must be the image itself"


def test_program_uneven_margin_and_size_check():
    program = Program(41, 30)
    assert program.offset == 5 and program.mask.sum() == 3 * (41**2 - 30**2)
    out = program(normalised_images(1, 30))
    assert torch.allclose(out[:, :, 5:35, 5:35], normalised_images(1, 30), atol=1e-5)
    with pytest.raises(ValueError, match="30x30"):
        program(normalised_images(1, 41))
    with pytest.raises(ValueError):
        Program(30, 41)


def test_program_gradient_reaches_only_the_frame():
    program = Program(40, 30)
    program(normalised_images(2, 30)).sum().backward()
    grad = program.program.grad
    assert torch.all(grad[:, 5:35, 5:35] == 0) and torch.all(grad[program.mask.bool()] > 0)


def test_apply_many_checks_the_vector_size():
    for prompter, size in [(PadPrompter(32, 4), 32), (Program(40, 30), 30)]:
        ctx = prompter.prepare(normalised_images(1, size))
        with pytest.raises(ValueError, match="shape"):
            prompter.apply_many(ctx, torch.zeros(2, prompter.flat_dim() - 1))
