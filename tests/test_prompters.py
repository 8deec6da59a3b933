"""VP's pad and patches, BAR's Program and the pixel-range clamp: counts, flat vectors, batched rendering, by hand."""

import pytest
import torch

from trainers.prompters import (
    CLIP_MEAN,
    CLIP_STD,
    FixedPatchPrompter,
    PadPrompter,
    Program,
    RandomPatchPrompter,
    clip_to_pixel_range,
)

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


# ---------------------------------------------------------------- VP's patch designs


@pytest.mark.parametrize("size", [1, 10, 30, 50, 80])
@pytest.mark.parametrize("design", ["padding", "fixed_patch", "random_patch"])
def test_each_vp_design_has_the_papers_parameter_count(design, size):
    from dassl.config import get_cfg_default
    from trainers.config import extend_cfg
    from trainers.prompters import build_prompter, vp_prompt_parameters

    cfg = extend_cfg(get_cfg_default())
    cfg.TRAINER.VPOUR.METHOD, cfg.TRAINER.VPOUR.PROMPT_SIZE = design, size
    prompter = build_prompter(design, cfg, cfg.TRAINER.VPOUR)
    expected = 3 * size**2 if design.endswith("patch") else 2 * 3 * size * (224 + 224 - 2 * size)
    assert prompter.num_learnable() == prompter.flat_dim() == expected == vp_prompt_parameters(design, 224, size)


def test_the_papers_headline_counts():
    assert FixedPatchPrompter(224, 30).num_learnable() == RandomPatchPrompter(224, 30).num_learnable() == 2_700
    assert PadPrompter(224, 30).num_learnable() == 69_840
    assert list(FixedPatchPrompter(224, 30).state_dict()) == ["patch"]


def test_fixed_patch_is_added_at_the_top_left_and_nowhere_else():
    prompter = FixedPatchPrompter(32, 5)
    x = normalised_images(2, 32)
    added = prompter(x) - x
    assert torch.allclose(added[:, :, :5, :5], prompter.patch.detach().expand(2, -1, -1, -1), atol=1e-6)
    added[:, :, :5, :5] = 0
    assert torch.all(added == 0)


def patch_corners(prompter, out, x):
    """The top-left corner of the added patch in each image (the patch has no zero entries)."""
    added = (out - x).detach().abs().sum(1)
    corners = []
    for image in added:
        rows, cols = torch.nonzero(image, as_tuple=True)
        assert len(rows) == prompter.patch_size**2
        corners.append((int(rows.min()), int(cols.min())))
    return corners


def test_random_patch_moves_per_image_and_per_call_in_training():
    prompter = RandomPatchPrompter(32, 4, seed=1).train()
    x = normalised_images(16, 32)
    first, second = prompter(x), prompter(x)
    a, b = patch_corners(prompter, first, x), patch_corners(prompter, second, x)
    assert len(set(a)) > 8, "each image gets its own location"
    assert a != b, "a new location at every call"
    assert all(0 <= r <= 28 and 0 <= c <= 28 for r, c in a + b)
    for out, corners in ((first, a), (second, b)):
        for image, (r, c) in enumerate(corners):
            window = (slice(None), slice(r, r + 4), slice(c, c + 4))
            assert torch.allclose(out[image][window] - x[image][window], prompter.patch.detach()[0], atol=1e-6)


def test_random_patch_locations_are_reproducible_from_the_seed():
    x = normalised_images(8, 32)
    runs = [RandomPatchPrompter(32, 4, seed=s).train() for s in (3, 3, 4)]
    for prompter in runs[1:]:
        prompter.set_flat(runs[0].get_flat())
    outs = [[prompter(x) for _ in range(3)] for prompter in runs]
    assert all(torch.equal(u, v) for u, v in zip(outs[0], outs[1]))
    assert not torch.equal(outs[0][0], outs[2][0])


def test_random_patch_resumes_its_locations_from_a_state_dict():
    x = normalised_images(4, 32)
    straight = RandomPatchPrompter(32, 4, seed=5).train()
    straight(x)
    state = {k: v.clone() for k, v in straight.state_dict().items()}
    resumed = RandomPatchPrompter(32, 4, seed=99).train()
    resumed.load_state_dict(state)
    for _ in range(3):
        assert torch.equal(straight(x), resumed(x))


def test_random_patch_evaluates_at_fixed_locations_without_touching_the_training_stream():
    x = normalised_images(6, 32)
    evaluated, untouched = RandomPatchPrompter(32, 4, seed=2), RandomPatchPrompter(32, 4, seed=2)
    untouched.set_flat(evaluated.get_flat())
    evaluated.eval()
    first = evaluated(x)
    assert torch.equal(first, evaluated(x)), "evaluation is deterministic"
    other_seed = RandomPatchPrompter(32, 4, seed=7).eval()
    other_seed.set_flat(evaluated.get_flat())
    assert torch.equal(first, other_seed(x)), "every model is evaluated at the same locations"
    assert len(set(patch_corners(evaluated, first, x))) > 1
    evaluated.train()
    assert torch.equal(evaluated(x), untouched.train()(x)), "evaluating does not move the training locations"


def test_random_patch_prepare_shares_one_draw_between_all_parameter_vectors():
    prompter = RandomPatchPrompter(32, 4, seed=1).train()
    x = normalised_images(3, 32)
    ctx = prompter.prepare(x)
    W = random_flats(prompter, 4)
    batched = prompter.apply_many(ctx, W).view(4, 3, 3, 32, 32)
    for i, w in enumerate(W):
        assert patch_corners(prompter, batched[i], x) == list(zip(ctx.rows.tolist(), ctx.cols.tolist()))
        r, c = int(ctx.rows[0]), int(ctx.cols[0])
        added = batched[i, 0, :, r : r + 4, c : c + 4] - x[0, :, r : r + 4, c : c + 4]
        assert torch.allclose(added, w.view(3, 4, 4), atol=1e-6)


@pytest.mark.parametrize("cls", [FixedPatchPrompter, RandomPatchPrompter])
def test_patch_gradient_is_the_number_of_images(cls):
    prompter = cls(32, 4).train()
    prompter(normalised_images(5, 32)).sum().backward()
    assert torch.all(prompter.patch.grad == 5)


def test_patch_checks_its_sizes():
    with pytest.raises(ValueError, match="patch"):
        FixedPatchPrompter(16, 17)
    with pytest.raises(ValueError, match="16x16"):
        FixedPatchPrompter(16, 4)(normalised_images(1, 32))


def test_random_patch_evaluates_each_image_at_its_own_location_whatever_the_batch():
    prompter = RandomPatchPrompter(224, 30, seed=3).eval()
    x, index = normalised_images(8, 224), torch.arange(100, 108)
    whole = patch_corners(prompter, prompter(x, index), x)
    singles = [patch_corners(prompter, prompter(x[i : i + 1], index[i : i + 1]), x[i : i + 1])[0] for i in range(8)]
    order = torch.tensor([5, 2, 7, 0])
    shuffled = patch_corners(prompter, prompter(x[order], index[order]), x[order])
    assert whole == singles, "a location does not depend on the batch size or the place in the batch"
    assert shuffled == [whole[i] for i in order.tolist()], "nor on the other images in the batch"
    assert len(set(whole)) > 4
    assert prompter.prompt_indexed(x, index).equal(prompter(x, index))
    assert patch_corners(prompter, prompter(x[:1]), x[:1]) == patch_corners(prompter, prompter(x), x)[:1], (
        "without indices, image j of a call is dataset image j"
    )


def test_random_patch_eval_locations_cover_every_placement_evenly():
    from trainers.prompters import eval_locations

    rows, cols = eval_locations(torch.arange(20_000), image_size=224, patch=220)
    assert rows.min() == cols.min() == 0 and rows.max() == cols.max() == 4
    assert torch.bincount(rows * 5 + cols).float().std() < 30  # 25 placements, 800 each on average


def test_random_patch_training_stream_is_not_the_optimisers():
    from trainers.prompters import training_seed
    from trainers.zo import ZO_REGISTRY

    for seed in (0, 1, 7):
        prompter, zo = RandomPatchPrompter(32, 4, seed=seed), ZO_REGISTRY.get("spsa").example(dim=4, seed=seed)
        assert not torch.equal(prompter.generator.get_state(), zo._generator.get_state())
        assert torch.equal(
            prompter.generator.get_state(), torch.Generator().manual_seed(training_seed(seed)).get_state()
        )
    assert len({training_seed(s) for s in range(100)} | set(range(100))) == 200


@pytest.mark.parametrize("design,largest", [("padding", 111), ("fixed_patch", 224), ("random_patch", 224)])
def test_each_vp_design_checks_its_own_prompt_size_limit(design, largest):
    from dassl.config import get_cfg_default
    from trainers.config import extend_cfg
    from trainers.methods import check_prompt_fits_input

    cfg = extend_cfg(get_cfg_default())
    cfg.INPUT.SIZE = (224, 224)
    cfg.TRAINER.VPOUR.METHOD, cfg.TRAINER.VPOUR.PROMPT_SIZE = design, largest
    check_prompt_fits_input(cfg, "TRAINER.VPOUR")
    cfg.TRAINER.VPOUR.PROMPT_SIZE = largest + 1
    with pytest.raises(ValueError, match=rf"TRAINER\.VPOUR\.PROMPT_SIZE {largest + 1} .* at most {largest}\. Lower"):
        check_prompt_fits_input(cfg, "TRAINER.VPOUR")
