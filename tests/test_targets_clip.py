"""CLIP target: zero-shot logits, weight loading (OpenAI cache, explicit file, HF cache, download), errors."""

import math
import os

import open_clip
import pytest
import torch
import torch.nn.functional as F
from open_clip.model import CLIP

from tests.helpers.targets import normalise, random_images, save_openai_checkpoint, target_cfg
from trainers.targets import DATASET_TEMPLATES, TINY_ARCHS, CLIPTarget, build_target, template_for
from trainers.targets.clip import LOGIT_PRECISIONS, logit_dtype, tiny_clip, zero_shot_logits

CLASSES = ["Annual_Crop_Land", "Forest", "Highway or Road", "River", "Sea or Lake"]
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def by_hand(model: CLIP, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
    """Zero-shot CLIP logits computed directly with open_clip."""
    with torch.no_grad():
        text = F.normalize(model.encode_text(open_clip.tokenize(prompts)), dim=-1)
        image = F.normalize(model.encode_image(images), dim=-1)
        return model.logit_scale.exp() * image @ text.T


def other_tiny_clip(seed: int = 123) -> CLIP:
    """A tiny CLIP with different random weights than the built-in tiny model, so a load is observable."""
    torch.manual_seed(seed)
    return CLIP(**TINY_ARCHS["tiny-vit"], quick_gelu=True, init_logit_scale=math.log(100.0)).eval()


@pytest.fixture
def no_caches(tmp_path, monkeypatch):
    """An empty home, no XDG cache, an empty Hugging Face cache and no network."""
    import urllib.request

    import huggingface_hub.constants

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))

    def no_network(*args, **kwargs):
        raise AssertionError("the target tried to use the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return tmp_path


@pytest.mark.parametrize("arch", ["tiny-vit", "tiny-rn"])
def test_zero_shot_matches_open_clip_by_hand(arch):
    target = build_target(target_cfg({"MODEL.BACKBONE.NAME": arch}), CLASSES)
    images = random_images(6)
    prompts = [f"a centered satellite photo of {c.replace('_', ' ')}." for c in CLASSES]
    assert target.prompts == prompts
    expected = by_hand(tiny_clip(arch), images, prompts)
    logits = target(images, split="test")
    assert logits.dtype == torch.float32 and logits.shape == (6, len(CLASSES))
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-4)
    assert torch.equal(logits.argmax(1), expected.argmax(1))


def test_tiny_models_are_repeatable_and_leave_global_rng_alone():
    torch.manual_seed(7)
    before = torch.rand(1)
    torch.manual_seed(7)
    a, b = tiny_clip("tiny-vit"), tiny_clip("tiny-vit")
    assert torch.rand(1) == before
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert a.logit_scale.exp().item() == pytest.approx(100.0)


def test_text_features_are_encoded_once(monkeypatch):
    target = build_target(target_cfg(), CLASSES)

    def fail(*args, **kwargs):
        raise AssertionError("text re-encoded at query time")

    monkeypatch.setattr(target._model, "encode_text", fail)
    target(random_images(2))
    target.logits_with_input_grad(random_images(2).requires_grad_())


def test_templates_follow_the_reference_table():
    assert len(DATASET_TEMPLATES) == 16
    assert template_for("DescribableTextures") == "{} texture."
    assert template_for("SVHN") == "This is a photo of a {}"
    assert template_for("CLEVR") == "This is a photo of {} objects"
    with pytest.warns(UserWarning, match="No prompt template"):
        assert template_for("MyOwnData") == "a photo of a {}."


def test_target_exposes_no_parameters_and_no_autograd():
    target = build_target(target_cfg(), CLASSES)
    assert not isinstance(target, torch.nn.Module)
    assert not hasattr(target, "parameters") and not hasattr(target, "state_dict")
    images = random_images(3).requires_grad_()
    logits = target(images)
    assert not logits.requires_grad and logits.grad_fn is None
    assert not target._model.training


def test_input_grad_reaches_images_only():
    target = build_target(target_cfg(), CLASSES)
    images = random_images(3).requires_grad_()
    F.cross_entropy(target.logits_with_input_grad(images), torch.tensor([0, 1, 2])).backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in target._model.parameters())
    assert target.counter.images() == 3


def test_other_sizes_are_resized_bicubic():
    target = build_target(target_cfg(), CLASSES)
    small = random_images(2, size=112)
    resized = F.interpolate(small, size=224, mode="bicubic", align_corners=False, antialias=True)
    torch.testing.assert_close(target(small), target(resized))


def test_other_input_normalisation_is_converted():
    clip_space = build_target(target_cfg(), CLASSES)
    imagenet_space = build_target(
        target_cfg({"INPUT.PIXEL_MEAN": list(IMAGENET_MEAN), "INPUT.PIXEL_STD": list(IMAGENET_STD)}), CLASSES
    )
    pixels = torch.rand(2, 3, 224, 224)
    torch.testing.assert_close(
        imagenet_space(normalise(pixels, IMAGENET_MEAN, IMAGENET_STD)),
        clip_space(normalise(pixels)),
        rtol=1e-4,
        atol=1e-3,
    )


@pytest.mark.parametrize("fmt", ["fp16", "fp32", "torchscript"])
def test_loads_openai_checkpoint_from_clip_cache(no_caches, fmt):
    source = other_tiny_clip()
    if fmt == "fp16":
        source.half().float()
    save_openai_checkpoint(source, str(no_caches / "home" / ".cache" / "clip" / "ViT-B-16.pt"), fmt)
    target = build_target(target_cfg({"MODEL.BACKBONE.NAME": "ViT-B/16"}), CLASSES)
    images = random_images(4)
    expected = by_hand(source, images, target.prompts)
    torch.testing.assert_close(target(images), expected, rtol=1e-5, atol=1e-4)
    assert target.describe() == "CLIP ViT-B/16 (OpenAI weights from ~/.cache/clip/ViT-B-16.pt), fp32, 5 classes"


def test_loads_checkpoint_from_xdg_cache(no_caches, monkeypatch):
    source = other_tiny_clip()
    monkeypatch.setenv("XDG_CACHE_HOME", str(no_caches / "xdg"))
    save_openai_checkpoint(source, str(no_caches / "xdg" / "clip" / "RN50.pt"), "fp32")
    target = build_target(target_cfg({"MODEL.BACKBONE.NAME": "RN50"}), CLASSES)
    images = random_images(2)
    torch.testing.assert_close(target(images), by_hand(source, images, target.prompts), rtol=1e-5, atol=1e-4)


def test_loads_explicit_checkpoint(no_caches):
    source = other_tiny_clip(seed=5)
    path = no_caches / "weights" / "my_clip.pt"
    save_openai_checkpoint(source, str(path), "fp32")
    target = build_target(target_cfg({"MODEL.BACKBONE.NAME": "ViT-B/32", "TARGET.CHECKPOINT": str(path)}), CLASSES)
    images = random_images(3)
    torch.testing.assert_close(target(images), by_hand(source, images, target.prompts), rtol=1e-5, atol=1e-4)
    assert f"weights from {path}" in target.describe()


def test_loads_open_clip_hugging_face_cache(no_caches):
    from safetensors.torch import save_file

    source = other_tiny_clip(seed=9)
    repo = no_caches / "hf" / "models--timm--vit_base_patch16_clip_224.openai"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    save_file(
        {k: v.contiguous() for k, v in source.state_dict().items()},
        str(repo / "snapshots" / "abc123" / "open_clip_model.safetensors"),
    )
    target = build_target(target_cfg({"MODEL.BACKBONE.NAME": "ViT-B/16"}), CLASSES)
    images = random_images(2)
    torch.testing.assert_close(target(images), by_hand(source, images, target.prompts), rtol=1e-5, atol=1e-4)


def test_missing_weights_error_names_paths_and_fixes(no_caches, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(no_caches / "xdg"))
    with pytest.raises(FileNotFoundError) as info:
        build_target(target_cfg({"MODEL.BACKBONE.NAME": "ViT-B/16"}), CLASSES)
    message = str(info.value)
    assert os.path.join(str(no_caches), "home", ".cache", "clip", "ViT-B-16.pt") in message
    assert os.path.join(str(no_caches), "xdg", "clip", "ViT-B-16.pt") in message
    assert os.path.join(str(no_caches), "hf", "models--timm--vit_base_patch16_clip_224.openai") in message
    assert "https://openaipublic.azureedge.net/clip/models/" in message
    assert "TARGET.CHECKPOINT" in message and "TARGET.DOWNLOAD True" in message


def test_download_only_when_asked(no_caches, monkeypatch):
    import open_clip.pretrained

    source = other_tiny_clip(seed=11)
    calls = []

    def fake_download(url, cache_dir=None):
        calls.append((url, cache_dir))
        path = os.path.join(cache_dir, os.path.basename(url))
        save_openai_checkpoint(source, path, "fp32")
        return path

    monkeypatch.setattr(open_clip.pretrained, "download_pretrained_from_url", fake_download)
    with pytest.raises(FileNotFoundError):
        build_target(target_cfg({"MODEL.BACKBONE.NAME": "ViT-L/14"}), CLASSES)
    assert calls == []
    target = build_target(target_cfg({"MODEL.BACKBONE.NAME": "ViT-L/14", "TARGET.DOWNLOAD": True}), CLASSES)
    assert calls == [
        (
            open_clip.get_pretrained_cfg("ViT-L-14-quickgelu", "openai")["url"],
            os.path.join(str(no_caches), "home", ".cache", "clip"),
        )
    ]
    images = random_images(2)
    torch.testing.assert_close(target(images), by_hand(source, images, target.prompts), rtol=1e-5, atol=1e-4)


def test_bad_names_and_paths_are_clear(no_caches):
    with pytest.raises(ValueError, match="Unknown CLIP backbone"):
        build_target(target_cfg({"MODEL.BACKBONE.NAME": "ViT-Z/99"}), CLASSES)
    with pytest.raises(FileNotFoundError, match="TARGET.CHECKPOINT"):
        build_target(target_cfg({"TARGET.CHECKPOINT": str(no_caches / "nowhere.pt")}), CLASSES)
    with pytest.raises(ValueError, match="TARGET.NAME"):
        build_target(target_cfg({"TARGET.NAME": "api"}), CLASSES)


def test_half_precision_needs_cuda():
    with pytest.raises(ValueError, match="CUDA"):
        build_target(target_cfg({"TARGET.PRECISION": "fp16"}), CLASSES)
    target = CLIPTarget(CLASSES, arch="tiny-vit")
    assert target.to("cpu") is target


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_on_cuda(precision):
    images = random_images(4)
    reference = build_target(target_cfg(), CLASSES)(images)
    target = build_target(target_cfg({"TARGET.PRECISION": precision}), CLASSES, device="cuda")
    logits = target(images.to("cuda"))
    assert logits.dtype == torch.float32
    torch.testing.assert_close(logits.cpu(), reference, rtol=0.05, atol=0.5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_under_caller_autocast():
    images = random_images(4)
    reference = build_target(target_cfg(), CLASSES)(images)
    target = build_target(target_cfg(), CLASSES, device="cuda")
    with torch.autocast("cuda", dtype=torch.float16):
        logits = target(images.to("cuda"))
        grad_logits = target.logits_with_input_grad(images.to("cuda").requires_grad_())
    assert logits.dtype == torch.float32 and grad_logits.dtype == torch.float32
    torch.testing.assert_close(logits.cpu(), reference, rtol=0.05, atol=0.5)


def unit_rows(n: int, dim: int, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_fp16_product_is_the_references_autocast_product():
    # under CUDA fp16 autocast the visual tower returns fp16 features; the reference then runs the norm in fp32
    # (autocast's fp32 list), so the division and the scaling by exp(logit_scale) are fp32, and the matmul
    # casts both operands to fp16
    feats = (3.0 * torch.randn(6, 64, generator=torch.Generator().manual_seed(0))).half()
    text = unit_rows(5, 64, seed=1)
    normed = feats.float() / feats.float().norm(dim=-1, keepdim=True)
    expected16 = (100.0 * normed).half() @ text.half().T
    logits16 = zero_shot_logits(feats, text, 100.0, torch.float16)
    assert logits16.dtype == torch.float16
    assert torch.equal(logits16, expected16)

    logits32 = zero_shot_logits(feats, text, 100.0)
    assert logits32.dtype == torch.float32
    torch.testing.assert_close(logits32, 100.0 * normed @ text.T)
    assert not torch.equal(logits16.float(), logits32), "the fp16 product rounds"
    torch.testing.assert_close(logits16.float(), logits32, rtol=0, atol=0.1)


def test_logit_dtype_follows_the_callers_autocast_unless_fp32_is_asked():
    assert LOGIT_PRECISIONS == ("autocast", "fp32")
    assert logit_dtype("cpu") == logit_dtype("cuda") == torch.float32
    with torch.autocast("cpu", dtype=torch.float16):
        assert logit_dtype("cpu") == torch.float16
        assert logit_dtype("cpu", "fp32") == torch.float32
        assert logit_dtype("cuda") == torch.float32, "only the autocast of the tensors' device counts"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert logit_dtype("cpu", "autocast") == torch.bfloat16
    with pytest.raises(ValueError, match="TARGET.CLIP.LOGIT_PRECISION"):
        logit_dtype("cpu", "fp16")


@pytest.mark.parametrize("logit_precision,dtype", [("autocast", torch.float16), ("fp32", torch.float32)])
def test_target_product_under_autocast(logit_precision, dtype):
    target = CLIPTarget(CLASSES, arch="tiny-vit", logit_precision=logit_precision)
    images = random_images(3)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.float16):
        feats = target._model.encode_image(images)
        logits = target(images)
    assert feats.dtype == torch.float16
    assert logits.dtype == torch.float32
    assert torch.equal(logits, zero_shot_logits(feats, target._text, target._logit_scale, dtype).float())


def test_logit_precision_comes_from_the_config():
    cfg = target_cfg()
    assert cfg.TARGET.CLIP.LOGIT_PRECISION == "autocast"
    assert build_target(cfg, CLASSES).logit_precision == "autocast"
    assert build_target(target_cfg({"TARGET.CLIP.LOGIT_PRECISION": "fp32"}), CLASSES).logit_precision == "fp32"
    with pytest.raises(ValueError, match="LOGIT_PRECISION"):
        build_target(target_cfg({"TARGET.CLIP.LOGIT_PRECISION": "fp64"}), CLASSES)
