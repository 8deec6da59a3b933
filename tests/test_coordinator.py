"""BlackVIP Coordinator, its scratch variant and the frozen-encoder factory."""

import copy
import shutil

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainers.encoders import FrozenEncoder, available_encoders, build_encoder
from trainers.prompters import CLIP_MEAN, CLIP_STD, Coordinator, CoordinatorInit, Decoder, clip_to_pixel_range
from trainers.weights import WeightsNotFoundError as EncoderWeightsNotFoundError

MEAN = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(CLIP_STD).view(1, 3, 1, 1)


class StubEncoder(nn.Module):
    """Cheap deterministic stand-in for a frozen encoder: pooled pixels times a fixed random matrix."""

    def __init__(self, out_dim=768, stage1_groups=None):
        super().__init__()
        self.out_dim = out_dim
        self.input_size = 224
        self.stage1_groups = stage1_groups
        self.proj = nn.Linear(48, out_dim)

    def forward(self, x):
        return self.proj(F.adaptive_avg_pool2d(x, 4).flatten(1))


def normalised_images(n, size=224, seed=0):
    pixels = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))
    return (pixels - MEAN) / STD


def perturbed_flats(prompter, p, scale=0.05, seed=1):
    noise = torch.randn(p, prompter.flat_dim(), generator=torch.Generator().manual_seed(seed))
    return prompter.get_flat() + scale * noise


def count_calls(module):
    calls = []
    module.register_forward_hook(lambda mod, args, out: calls.append(args[0]))
    return calls


def bn_state(module):
    return {k: v.clone() for k, v in module.state_dict().items() if "running" in k or "num_batches" in k}


@pytest.fixture(scope="module")
def tiny_vit():
    return build_encoder("tiny-vit")


@pytest.mark.parametrize(
    "z_dim,src_dim,groups,expected",
    [(768, 1568, None, 9_920), (768, 784, None, 9_136), (768, 3136, None, 11_488), (2048, 3136, 32, 10_464)],
)
def test_learnable_counts(z_dim, src_dim, groups, expected):
    coordinator = Coordinator(StubEncoder(z_dim, groups), src_dim=src_dim)
    assert coordinator.num_learnable() == expected == coordinator.get_flat().numel()
    assert coordinator.decoder.trigger.shape == (1, src_dim - z_dim)
    assert all(name.startswith("decoder.") for name, _ in coordinator.learnable_named_parameters())


def test_default_split_is_9120_decoder_plus_800_trigger():
    coordinator = Coordinator(StubEncoder(768), src_dim=1568)
    body = sum(p.numel() for p in coordinator.decoder.body.parameters())
    assert body == 9_120 and coordinator.decoder.trigger.numel() == 800


def test_coordinator_init_counts_decoder_only():
    coordinator = CoordinatorInit(e_out_dim=32)
    assert coordinator.num_learnable() == 9_120
    assert coordinator.decoder.trigger is None
    assert not any(p.requires_grad for p in coordinator.encoder.parameters())


@pytest.mark.parametrize("src_dim", [1500, 735, 768])
def test_invalid_src_dim_raises(src_dim):
    with pytest.raises(ValueError, match="src_dim"):
        Coordinator(StubEncoder(768), src_dim=src_dim)


def test_decoder_architecture():
    decoder = Decoder(1568, 768)
    stages, last = decoder.body[:4], decoder.body[4]
    widths = [(32, 64, 64, 32), (64, 64, 32, 64), (32, 32, 32, 32), (32, 32, 16, 32)]
    for stage, (c_in, c_mid, c_out, groups) in zip(stages, widths):
        up, mix, bn, act = stage
        assert isinstance(up, nn.ConvTranspose2d) and isinstance(mix, nn.ConvTranspose2d)
        assert (up.in_channels, up.out_channels, up.groups) == (c_in, c_mid, groups)
        assert up.kernel_size == up.stride == (2, 2)
        assert up.bias is not None and mix.bias is None
        assert (mix.in_channels, mix.out_channels, mix.kernel_size) == (c_mid, c_out, (1, 1))
        assert isinstance(bn, nn.BatchNorm2d) and bn.eps == 1e-5 and bn.momentum == 0.1
        assert isinstance(act, nn.GELU)
    assert isinstance(last, nn.ConvTranspose2d) and last.bias is None
    assert (last.in_channels, last.out_channels, last.kernel_size, last.stride) == (16, 3, (2, 2), (2, 2))
    assert torch.all((decoder.trigger >= 0) & (decoder.trigger < 0.1))
    assert Decoder(3136, 2048, stage1_groups=32).body[0][0].groups == 32
    assert Decoder(784, 768).body[0][0].groups == 16


def test_decoder_input_is_features_then_trigger_row_major():
    decoder = Decoder(1568, 768).eval()
    seen = count_calls(decoder.body[0])
    z = torch.randn(2, 768)
    out = decoder(z)
    assert out.shape == (2, 3, 224, 224)
    grid = seen[0]
    assert grid.shape == (2, 32, 7, 7)
    assert torch.equal(grid.reshape(2, -1)[:, :768], z)
    assert torch.equal(grid.reshape(2, -1)[:, 768:], decoder.trigger.detach().expand(2, -1))


def test_output_matches_hand_computation_and_stays_in_pixel_range():
    coordinator = Coordinator(StubEncoder(768), p_eps=0.5).eval()
    x = normalised_images(2)
    with torch.no_grad():
        out = coordinator(x)
        prompt = coordinator.decoder(coordinator.encoder(x))
    expected = clip_to_pixel_range(x + 0.5 * prompt, CLIP_MEAN, CLIP_STD)
    assert torch.equal(out, expected)
    pixels = out * STD + MEAN
    assert pixels.min() >= -1e-6 and pixels.max() <= 1 + 1e-6
    coordinator.p_eps = 100.0
    with torch.no_grad():
        pixels = coordinator(x) * STD + MEAN
    assert pixels.min() >= -1e-6 and pixels.max() <= 1 + 1e-6
    assert (pixels < 1e-5).any() and (pixels > 1 - 1e-5).any(), "a large prompt must hit both bounds"


def test_encoder_runs_once_in_prepare_and_never_in_apply_many(tiny_vit):
    coordinator = Coordinator(copy.deepcopy(tiny_vit))
    calls = count_calls(coordinator.encoder)
    x = normalised_images(2)
    ctx = coordinator.prepare(x)
    assert len(calls) == 1 and calls[0] is x, "the 224 path feeds the images to the encoder unchanged"
    coordinator.apply_many(ctx, perturbed_flats(coordinator, 3))
    assert len(calls) == 1


def test_apply_many_equals_loop_in_eval_mode(tiny_vit):
    coordinator = Coordinator(copy.deepcopy(tiny_vit)).eval()
    x = normalised_images(2)
    W = perturbed_flats(coordinator, 3)
    original = coordinator.get_flat()
    with torch.no_grad():
        batched = coordinator.apply_many(coordinator.prepare(x), W)
        assert torch.equal(coordinator.get_flat(), original), "apply_many must not touch the stored parameters"
        looped = []
        for w in W:
            coordinator.set_flat(w)
            looped.append(coordinator(x))
    assert batched.shape == (6, 3, 224, 224)
    assert torch.equal(batched, torch.cat(looped))
    assert not torch.equal(looped[0], looped[1])


def test_apply_many_equals_loop_in_train_mode_including_running_stats():
    batched_model = Coordinator(StubEncoder(768)).train()
    looped_model = copy.deepcopy(batched_model)
    initial_stats = bn_state(batched_model.decoder)
    x = normalised_images(3)
    W = perturbed_flats(batched_model, 4, scale=0.5)
    with torch.no_grad():
        batched = batched_model.apply_many(batched_model.prepare(x), W)
        looped = []
        for w in W:
            looped_model.set_flat(w)
            looped.append(looped_model(x))
    assert torch.equal(batched, torch.cat(looped))
    after_batched, after_looped = bn_state(batched_model.decoder), bn_state(looped_model.decoder)
    for key in after_batched:
        assert torch.equal(after_batched[key], after_looped[key]), key
    assert after_batched["body.0.2.num_batches_tracked"].item() == 4
    assert not torch.equal(after_batched["body.0.2.running_mean"], initial_stats["body.0.2.running_mean"])


def test_train_mode_keeps_encoder_frozen_and_in_eval(tiny_vit):
    coordinator = Coordinator(copy.deepcopy(tiny_vit)).train()
    assert coordinator.decoder.training and not coordinator.encoder.training
    assert not any(m.training for m in coordinator.encoder.modules())
    assert not any(p.requires_grad for p in coordinator.encoder.parameters())
    stub = Coordinator(StubEncoder(768)).train()
    assert not stub.encoder.training


def test_forward_backpropagates_into_decoder_only(tiny_vit):
    coordinator = Coordinator(copy.deepcopy(tiny_vit))
    coordinator(normalised_images(2)).square().sum().backward()
    assert all(p.grad is not None for _, p in coordinator.learnable_named_parameters())
    assert all(p.grad is None for p in coordinator.encoder.parameters())


def test_state_dict_holds_only_learned_state():
    coordinator = Coordinator(StubEncoder(768))
    with torch.no_grad():
        coordinator.apply_many(coordinator.prepare(normalised_images(2)), perturbed_flats(coordinator, 2))
    keys = list(coordinator.state_dict())
    assert keys and all(key.startswith("decoder.") for key in keys)
    assert "decoder.body.0.2.running_mean" in keys

    fresh = Coordinator(copy.deepcopy(coordinator.encoder))
    fresh.load_state_dict(coordinator.state_dict(), strict=True)
    coordinator.eval(), fresh.eval()
    x = normalised_images(2)
    assert torch.equal(fresh(x), coordinator(x))

    wrapped = nn.ModuleDict({"prompter": coordinator})
    assert all(key.startswith("prompter.decoder.") for key in wrapped.state_dict())
    nn.ModuleDict({"prompter": fresh}).load_state_dict(wrapped.state_dict(), strict=True)


def test_other_image_sizes_resize_encoder_input_and_prompt():
    coordinator = Coordinator(StubEncoder(768), image_size=96, p_eps=0.7).eval()
    calls = count_calls(coordinator.encoder)
    x = normalised_images(2, size=96)
    with torch.no_grad():
        out = coordinator(x)
        prompt = coordinator.decoder(coordinator.encoder(F.interpolate(x, size=(224, 224), mode="bilinear")))
    assert calls[0].shape == (2, 3, 224, 224)
    assert out.shape == (2, 3, 96, 96)
    small = F.interpolate(prompt, size=(96, 96), mode="bilinear")
    assert torch.allclose(out, clip_to_pixel_range(x + 0.7 * small, CLIP_MEAN, CLIP_STD), atol=1e-6)
    with pytest.raises(ValueError, match="96x96"):
        coordinator(normalised_images(1, size=224))


def test_coordinator_init_encoder_always_uses_batch_statistics():
    coordinator = CoordinatorInit(e_out_dim=32)
    x = normalised_images(3)
    bns = [m for m in coordinator.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 5 and not any(bn.track_running_stats for bn in bns)
    with torch.no_grad():
        coordinator.train()
        z_train = coordinator.prepare(x).z
        coordinator.eval()
        z_eval = coordinator.prepare(x).z
        z_alone = coordinator.prepare(x[:1]).z
    assert z_train.shape == (3, 32, 7, 7)
    assert torch.equal(z_train, z_eval)
    assert not torch.allclose(z_alone[0], z_eval[0]), "batch statistics make features depend on the batch"
    assert any(key.startswith("encoder.") for key in coordinator.state_dict()), "random encoder weights are saved"


REFERENCE_ENCODER = [(3, 32, 32), (32, 32, 64), (64, 64, 64), (64, 64, 128), (128, 128, 32)]
"""The reference's scratch encoder at 224 px, E_OUT_DIM 32: (3x3 conv in, 3x3 conv out = 2x2 conv in, 2x2 conv out)."""


def test_coordinator_init_encoder_has_the_reference_layer_shapes():
    encoder = CoordinatorInit(e_out_dim=32).encoder
    assert len(encoder.blocks) == 5
    for block, (c_in, c_mid, c_out) in zip(encoder.blocks, REFERENCE_ENCODER):
        conv, down, bn, act = block
        assert isinstance(conv, nn.Conv2d) and isinstance(down, nn.Conv2d)
        assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding) == (
            c_in,
            c_mid,
            (3, 3),
            (1, 1),
            (1, 1),
        )
        assert conv.bias is not None and down.bias is None
        assert (down.in_channels, down.out_channels, down.kernel_size, down.stride) == (c_mid, c_out, (2, 2), (2, 2))
        assert isinstance(bn, nn.BatchNorm2d) and bn.num_features == c_out and bn.affine
        assert isinstance(act, nn.GELU)
    assert sum(p.numel() for p in encoder.parameters()) == 310_048
    assert encoder(normalised_images(2)).shape == (2, 32, 7, 7)


def test_small_coordinator_init_keeps_the_first_blocks_and_ends_with_e_out_dim():
    encoder = CoordinatorInit(e_out_dim=4, image_size=28, mean=(0, 0, 0), std=(1, 1, 1)).encoder
    shapes = [(b[0].in_channels, b[0].out_channels, b[1].out_channels) for b in encoder.blocks]
    assert shapes == [(3, 32, 32), (32, 32, 4)]
    assert encoder(torch.rand(2, 3, 28, 28)).shape == (2, 4, 7, 7)


def old_encoder_state(prefix=""):
    """Encoder entries of a coordinator_init checkpoint from before the reference widths (3x3 conv c_in -> c_out)."""
    widths = [(3, 32), (32, 64), (64, 64), (64, 128), (128, 32)]
    state = {}
    for i, (c_in, c_out) in enumerate(widths):
        state[f"{prefix}encoder.blocks.{i}.0.weight"] = torch.zeros(c_out, c_in, 3, 3)
        state[f"{prefix}encoder.blocks.{i}.0.bias"] = torch.zeros(c_out)
        state[f"{prefix}encoder.blocks.{i}.1.weight"] = torch.zeros(c_out, c_out, 2, 2)
        state[f"{prefix}encoder.blocks.{i}.2.weight"] = torch.ones(c_out)
        state[f"{prefix}encoder.blocks.{i}.2.bias"] = torch.zeros(c_out)
    return state


def test_coordinator_init_checkpoint_round_trips_and_old_encoder_shapes_are_refused():
    coordinator = CoordinatorInit(e_out_dim=32)
    state = coordinator.state_dict()
    assert sum(v.numel() for k, v in state.items() if k.startswith("encoder.")) == 310_048
    fresh = CoordinatorInit(e_out_dim=32)
    fresh.load_state_dict(state, strict=True)
    x = normalised_images(2)
    coordinator.eval(), fresh.eval()
    assert torch.equal(fresh(x), coordinator(x)), "the saved random encoder is restored"

    old = {**state, **old_encoder_state()}
    assert old.keys() == state.keys(), "same names, other shapes"
    with pytest.raises(RuntimeError, match=r"different model") as info:
        fresh.load_state_dict(old)
    assert "encoder.blocks.1.0.weight: (64, 32, 3, 3) saved, (32, 32, 3, 3) expected" in str(info.value)
    wrapped = {"prompter." + k: v for k, v in old.items()}
    with pytest.raises(RuntimeError, match=r"prompter\.encoder\.blocks\.1\.0\.weight"):
        nn.ModuleDict({"prompter": fresh}).load_state_dict(wrapped)


def test_coordinator_init_apply_many_equals_loop():
    coordinator = CoordinatorInit(e_out_dim=32).eval()
    x = normalised_images(2)
    W = perturbed_flats(coordinator, 2)
    with torch.no_grad():
        batched = coordinator.apply_many(coordinator.prepare(x), W)
        looped = []
        for w in W:
            coordinator.set_flat(w)
            looped.append(coordinator(x))
    assert torch.equal(batched, torch.cat(looped))


# ----- frozen-encoder factory -----

TINY_VIT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


@pytest.fixture(scope="module")
def mae_checkpoint(tmp_path_factory):
    """A tiny MAE pre-training model saved in the layout of the facebook/vit-mae-base hub repo."""
    from transformers import ViTMAEConfig, ViTMAEForPreTraining

    torch.manual_seed(0)
    config = ViTMAEConfig(
        **TINY_VIT,
        mask_ratio=0.0,
        decoder_hidden_size=16,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=32,
    )
    model = ViTMAEForPreTraining(config).eval()
    with torch.no_grad():
        model.vit.layernorm.weight.uniform_(0.5, 1.5)
        model.vit.layernorm.bias.normal_()
    folder = tmp_path_factory.mktemp("vit-mae")
    model.save_pretrained(folder)
    return folder, model


@pytest.fixture
def empty_hf_cache(tmp_path, monkeypatch):
    """Point the Hugging Face cache at an empty folder and forbid network access."""
    import huggingface_hub
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    real = huggingface_hub.snapshot_download
    calls = []

    def offline_only(repo_id, **kwargs):
        calls.append(kwargs)
        assert kwargs.get("local_files_only"), "the network must not be used unless allowed"
        return real(repo_id, **kwargs)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline_only)
    return cache, calls


def test_unknown_encoder_name():
    assert {"vit-mae-base", "vit-base", "dino-resnet-50", "tiny-vit"} <= set(available_encoders())
    with pytest.raises(ValueError, match="vit-mae-base"):
        build_encoder("vit-huge")


def test_missing_weights_give_a_clear_error(empty_hf_cache):
    cache, calls = empty_hf_cache
    with pytest.raises(EncoderWeightsNotFoundError) as info:
        build_encoder("vit-mae-base")
    message = str(info.value)
    for fragment in [
        "facebook/vit-mae-base",
        str(cache),
        "huggingface-cli download facebook/vit-mae-base",
        "TRAINER.BLACKVIP.PT_BACKBONE_PATH",
        "TARGET.DOWNLOAD True",
    ]:
        assert fragment in message
    assert "allow_download" not in message  # the user sets config keys, not Python arguments
    assert calls and all(call["local_files_only"] for call in calls)


def test_bad_path_names_the_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(EncoderWeightsNotFoundError, match="nowhere") as info:
        build_encoder("dino-resnet-50", path=str(missing))
    assert "Ramos-Ramos/dino-resnet-50" in str(info.value)


def test_mae_checkpoint_gives_cls_before_final_norm(mae_checkpoint):
    folder, mae = mae_checkpoint
    encoder = build_encoder("vit-mae-base", path=str(folder))
    assert isinstance(encoder, FrozenEncoder)
    assert encoder.out_dim == 32 and encoder.input_size == 224
    assert not encoder.training and not any(p.requires_grad for p in encoder.parameters())
    x = normalised_images(2)
    with torch.no_grad():
        hidden = mae.vit(pixel_values=x, output_hidden_states=True).hidden_states
        expected = hidden[-1][:, 0]
        normed = mae.vit.layernorm(hidden[-1])[:, 0]
        z = encoder(x)
    assert len(hidden) == 3
    assert z.shape == (2, 32)
    assert torch.allclose(z, expected, atol=1e-5), "CLS of the last block, shuffling-invariant in MAE"
    assert not torch.allclose(z, normed, atol=1e-2), "the readout must come before the final LayerNorm"
    assert build_encoder("vit-mae-base", path=str(folder / "model.safetensors")).out_dim == 32


def test_mae_checkpoint_found_in_hf_cache(mae_checkpoint, empty_hf_cache):
    folder, _ = mae_checkpoint
    cache, _ = empty_hf_cache
    repo = cache / "models--facebook--vit-mae-base"
    snapshot = repo / "snapshots" / "0123456789abcdef"
    shutil.copytree(folder, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123456789abcdef")
    encoder = build_encoder("vit-mae-base")
    x = normalised_images(1)
    assert torch.equal(encoder(x), build_encoder("vit-mae-base", path=str(folder))(x))


def test_download_only_when_allowed(mae_checkpoint, tmp_path, monkeypatch):
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.errors import LocalEntryNotFoundError

    folder, _ = mae_checkpoint
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    calls = []

    def fake_snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        if kwargs.get("local_files_only"):
            raise LocalEntryNotFoundError("not cached")
        target = tmp_path / "downloaded"
        if not target.exists():
            shutil.copytree(folder, target)
        return str(target)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    encoder = build_encoder("vit-mae-base", allow_download=True)
    assert encoder.out_dim == 32
    assert calls[0][1]["local_files_only"] and not calls[1][1].get("local_files_only")
    assert all(repo == "facebook/vit-mae-base" for repo, _ in calls)


def test_vit_base_checkpoint_gives_cls_after_final_norm(tmp_path):
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(1)
    model = ViTModel(ViTConfig(**TINY_VIT)).eval()
    model.save_pretrained(tmp_path)
    encoder = build_encoder("vit-base", path=str(tmp_path))
    x = normalised_images(2)
    with torch.no_grad():
        expected = model(pixel_values=x).last_hidden_state[:, 0]
    assert torch.allclose(encoder(x), expected, atol=1e-6)


def test_dino_resnet_checkpoint_gives_pooled_features(tmp_path):
    from transformers import ResNetConfig, ResNetModel

    torch.manual_seed(2)
    model = ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[16, 32], depths=[1, 1]))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 2.0)
    model.eval().save_pretrained(tmp_path)
    encoder = build_encoder("dino-resnet-50", path=str(tmp_path))
    x = normalised_images(2)
    with torch.no_grad():
        expected = model(pixel_values=x).pooler_output.flatten(1)
    assert encoder.out_dim == 32 and encoder.stage1_groups == 32
    assert torch.allclose(encoder(x), expected, atol=1e-6)
    encoder.train()
    assert not any(m.training for m in encoder.modules())
    assert Coordinator(encoder, src_dim=1568).decoder.body[0][0].groups == 32


def test_tiny_vit_is_deterministic_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    first, second = build_encoder("tiny-vit"), build_encoder("tiny-vit")
    assert torch.equal(torch.random.get_rng_state(), state)
    x = normalised_images(1)
    assert torch.equal(first(x), second(x)) and first(x).shape == (1, 32)


@pytest.mark.parametrize("size,stages", [(224, 5), (112, 4), (64, 4), (56, 3), (28, 2), (14, 1)])
def test_decoder_doubles_the_7x7_grid_to_cover_the_image(size, stages):
    from trainers.prompters import Decoder, num_stages

    assert num_stages(size) == stages
    decoder = Decoder(1568, 768, image_size=size).eval()
    assert decoder(torch.randn(2, 768)).shape == (2, 3, 7 * 2**stages, 7 * 2**stages)


def test_small_images_get_a_small_decoder_and_encoder():
    from trainers.prompters import CoordinatorInit

    small = CoordinatorInit(e_out_dim=32, image_size=28, mean=(0, 0, 0), std=(1, 1, 1))
    # stage 1 (320 + 4096 + 128) and the final 64 -> 3 transposed conv (768); 224 px keeps 9,120
    assert small.num_learnable() == 4544 + 768
    assert CoordinatorInit(e_out_dim=32).num_learnable() == 9120
    x = torch.rand(4, 3, 28, 28)
    ctx = small.prepare(x)
    assert ctx.z.shape == (4, 32, 7, 7)
    out = small.apply_many(ctx, small.get_flat().repeat(3, 1))
    assert out.shape == (12, 3, 28, 28) and out.min() >= 0 and out.max() <= 1
