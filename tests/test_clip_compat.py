"""CoOp-family code runs unchanged: OpenAI's ``clip`` API, the ``my_dassl`` alias, and clashing plugin names.

The reference is OpenAI's own implementation, ``clip/model.py`` and ``clip/simple_tokenizer.py`` of the
``clip-anytorch`` wheel, loaded by file path at test time (importing that package would need ``pkg_resources``
and would shadow ours). Without the wheel these tests skip, unless ``BBVP_REQUIRE_NETWORK_WHEELS=1``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch

import clip as clip_package
import dassl.engine
import dassl.utils
import train
from clip import clip
from clip.simple_tokenizer import SimpleTokenizer
from dassl.engine import TRAINER_REGISTRY
from dassl.utils import load_checkpoint
from dassl.utils.registry import DuplicateRegistrationError
from tests.helpers.toy_data import make_coop_dataset
from tests.plugins import coop_style  # noqa: F401  (registers the ToyCoOp dataset)
from trainers import plugins
from trainers.targets.clip import tiny_clip

REFERENCE_WHEEL = "clip-anytorch==2.6.0"
WHEEL_CACHE = Path(os.environ.get("BBVP_WHEEL_CACHE", "~/.cache/bbvp/wheels")).expanduser()
CLASSES = ["annual crop", "forest", "river", "sea"]
COOP_PLUGIN = Path(__file__).parent / "plugins" / "coop_prompt.py"


def _wheel() -> Path:
    """The reference wheel in WHEEL_CACHE, fetched once with ``pip download`` (never installed)."""
    found = sorted(WHEEL_CACHE.glob("clip_anytorch-2.6.0-*.whl"))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", REFERENCE_WHEEL, "-d", str(WHEEL_CACHE)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        found = sorted(WHEEL_CACHE.glob("clip_anytorch-2.6.0-*.whl"))
        if not found:
            last = (done.stderr.strip().splitlines() or [f"pip exited with {done.returncode}"])[-1]
            reason = f"cannot fetch {REFERENCE_WHEEL} with pip download ({last})"
            if os.environ.get("BBVP_REQUIRE_NETWORK_WHEELS") == "1":
                pytest.fail(reason + " and BBVP_REQUIRE_NETWORK_WHEELS=1")
            pytest.skip(reason)
    return found[-1]


def _load_by_path(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """OpenAI's ``model`` and ``simple_tokenizer`` modules from the wheel, as (model, tokenizer) modules."""
    folder = tmp_path_factory.mktemp("openai_clip")
    with zipfile.ZipFile(_wheel()) as wheel:
        for name in ("model.py", "simple_tokenizer.py", "bpe_simple_vocab_16e6.txt.gz"):
            (folder / name).write_bytes(wheel.read(f"clip/{name}"))
    return (
        _load_by_path("openai_reference_clip_model", folder / "model.py"),
        _load_by_path("openai_reference_clip_tokenizer", folder / "simple_tokenizer.py"),
    )


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty home folder and Hugging Face cache, so no real weights are found and the tiny ones land here."""
    import huggingface_hub.constants

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv(clip.DOWNLOAD_ENV, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    return tmp_path / "home"


# ---------------------------------------------------------------- the CoOp-style trainer


def coop_argv(root: Path, out: Path) -> list[str]:
    dataset_yaml = root / "toy.yaml"
    dataset_yaml.write_text("DATASET:\n  NAME: ToyCoOp\n")
    opts = {
        "MODEL.BACKBONE.NAME": "tiny-vit",
        "TRAINER.COOP.N_CTX": 4,
        "TRAINER.COOP.PREC": "fp32",
        "INPUT.SIZE": "(224,224)",
        "OPTIM.NAME": "sgd",
        "OPTIM.LR": 0.002,
        "OPTIM.MAX_EPOCH": 1,
        "DATALOADER.NUM_WORKERS": 0,
        "DATALOADER.TRAIN_X.BATCH_SIZE": 4,
        "DATALOADER.TEST.BATCH_SIZE": 12,
    }
    argv = ["--root", str(root), "--seed", "1", "--trainer", "CoOp", "--plugin", str(COOP_PLUGIN)]
    argv += ["--dataset-config-file", str(dataset_yaml), "--output-dir", str(out)]
    return argv + [str(item) for pair in opts.items() for item in pair]


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")  # CoOp's loader tries it first
def test_a_coop_style_trainer_runs_through_train_py_and_its_logits_equal_openai_clip(home, tmp_path, reference):
    ref_model, _ = reference
    root = tmp_path / "data"
    make_coop_dataset(str(root), "toy_coop", "split_zhou_ToyCoOp.json", CLASSES, n_train=4, n_val=1, n_test=3)
    out = tmp_path / "out"
    argv = coop_argv(root, out)
    results = train.main(train.parse_args(argv))
    log = (out / "log.txt").read_text()
    assert "Finish training" in log and "* accuracy: " in log and results["trainer"] == "CoOp"
    assert (home / ".cache" / "clip" / "tiny-vit.pt").is_file()  # what clip._download gave the trainer

    plugin = sys.modules["bbvp_plugin_coop_prompt"]
    cfg = train.setup_cfg(train.parse_args(argv))
    learned = load_checkpoint(str(out / "prompt_learner" / "model.pth.tar-1"))["state_dict"]
    state_dict = torch.load(clip._download(clip._MODELS["tiny-vit"]), map_location="cpu")
    models = {
        "ours": plugin.load_clip_to_cpu(cfg).float(),
        "openai": ref_model.build_model(dict(state_dict)).float(),
    }
    torch.manual_seed(0)
    images = torch.randn(6, 3, 224, 224)
    logits = {}
    for name, clip_model in models.items():
        custom = plugin.CustomCLIP(cfg, CLASSES, clip_model).eval()
        custom.prompt_learner.load_state_dict(learned)
        with torch.no_grad():
            logits[name] = custom(images)
    assert logits["ours"].shape == (6, len(CLASSES))
    assert not torch.allclose(learned["ctx"], torch.zeros_like(learned["ctx"]))
    torch.testing.assert_close(logits["ours"], logits["openai"], atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("arch", ["tiny-vit", "tiny-rn"])
def test_clip_model_equals_openai_clip_on_the_same_state_dict(arch, reference):
    ref_model, _ = reference
    state_dict = tiny_clip(arch).state_dict()
    ours, theirs = clip.build_model(dict(state_dict)), ref_model.build_model(dict(state_dict))
    assert ours.dtype == theirs.dtype == torch.float16
    assert {k: v.dtype for k, v in ours.state_dict().items()} == {k: v.dtype for k, v in theirs.state_dict().items()}
    ours, theirs = ours.float(), theirs.float()
    assert ours.visual.input_resolution == theirs.visual.input_resolution == 224
    assert ours.context_length == theirs.context_length and ours.vocab_size == theirs.vocab_size
    torch.manual_seed(0)
    images = torch.randn(3, 3, 224, 224)
    tokens = clip.tokenize(["a photo of a forest.", "a river", "sea"])
    with torch.no_grad():
        torch.testing.assert_close(ours.encode_image(images), theirs.encode_image(images), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours.encode_text(tokens), theirs.encode_text(tokens), atol=1e-5, rtol=1e-5)
        for mine, ref in zip(ours(images, tokens), theirs(images, tokens)):
            torch.testing.assert_close(mine, ref, atol=1e-4, rtol=1e-5)


def test_the_sequence_first_text_transformer_equals_open_clips_batch_first_one():
    open_clip_model = tiny_clip("tiny-vit")
    ours = clip.build_model(open_clip_model.state_dict()).float()
    ours.load_state_dict(open_clip_model.state_dict())  # undo build_model's fp16 rounding: compare exactly
    torch.manual_seed(0)
    x = torch.randn(3, 77, 64)  # (N, L, D)
    with torch.no_grad():
        sequence_first = ours.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        batch_first = open_clip_model.transformer(x, attn_mask=open_clip_model.attn_mask)
        unmasked = open_clip_model.transformer(x)
        tokens = clip.tokenize(["a photo of a cat.", "sea"])
        text = ours.encode_text(tokens), open_clip_model.encode_text(tokens.long())
    torch.testing.assert_close(sequence_first, batch_first, atol=1e-6, rtol=1e-6)
    assert (sequence_first - unmasked).abs().max() > 1e-2  # the causal mask is applied, not left to the caller
    torch.testing.assert_close(*text, atol=1e-6, rtol=1e-6)


def test_encode_image_casts_its_input_to_the_weights_dtype():
    model = clip.build_model(tiny_clip("tiny-vit").state_dict()).float()
    images = torch.randn(2, 3, 224, 224, dtype=torch.float64)
    with torch.no_grad():
        features = model.encode_image(images)
        torch.testing.assert_close(features, model.encode_image(images.float()))
    assert features.dtype == model.dtype == torch.float32


# ---------------------------------------------------------------- tokenizer


TEXTS = [
    "a photo of a annual crop.",
    "A PHOTO of the Forest,   with  extra   spaces!",
    "naïve café — 東京 🌊 <|endoftext|> it's they'll 1234",
    "x" * 5,
]


def test_the_tokenizer_gives_openais_ids(reference):
    _, ref_tokenizer = reference
    ours, theirs = SimpleTokenizer(), ref_tokenizer.SimpleTokenizer()
    assert ours.encoder == theirs.encoder and ours.bpe_ranks == theirs.bpe_ranks
    for text in TEXTS:
        assert ours.encode(text) == theirs.encode(text)
        assert ours.decode(ours.encode(text)) == theirs.decode(theirs.encode(text))
    sot, eot = theirs.encoder["<|startoftext|>"], theirs.encoder["<|endoftext|>"]
    expected = torch.zeros(len(TEXTS), 77, dtype=torch.int)
    for row, text in enumerate(TEXTS):
        ids = [sot, *theirs.encode(text), eot]
        expected[row, : len(ids)] = torch.tensor(ids)
    assert torch.equal(clip.tokenize(TEXTS), expected) and clip.tokenize("sea").shape == (1, 77)


def test_tokenize_refuses_long_texts_unless_asked_to_truncate():
    long_text = "word " * 100
    with pytest.raises(RuntimeError, match="more than context_length 77; shorten it or pass truncate=True"):
        clip.tokenize(long_text)
    tokens = clip.tokenize([long_text], truncate=True)
    assert tokens.dtype == torch.int32 and tokens[0, -1] == 49407 and tokens[0, 0] == 49406


# ---------------------------------------------------------------- weights


def test_the_package_has_openais_api():
    assert clip_package.load is clip.load and clip_package.tokenize is clip.tokenize
    assert clip.build_model is clip_package.model.build_model
    assert clip.available_models()[:9] == list(clip._MODELS)[:9] and "ViT-B/16" in clip.available_models()
    assert clip._MODELS["ViT-B/16"].startswith("https://") and clip._MODELS["ViT-B/16"].endswith("/ViT-B-16.pt")


def test_load_refuses_to_download_without_permission_naming_the_paths_tried(home, monkeypatch):
    import open_clip.pretrained

    fetched = []
    monkeypatch.setattr(
        open_clip.pretrained, "download_pretrained_from_url", lambda url, cache_dir: fetched.append(url)
    )
    for attempt in (lambda: clip.load("ViT-B/32", device="cpu"), lambda: clip._download(clip._MODELS["ViT-B/32"])):
        with pytest.raises(FileNotFoundError) as error:
            attempt()
        message = str(error.value)
        assert str(home / ".cache" / "clip" / "ViT-B-32.pt") in message
        assert (
            f"{clip.DOWNLOAD_ENV}=1" in message and "download=True" in message and clip._MODELS["ViT-B/32"] in message
        )
    assert fetched == []
    monkeypatch.setenv(clip.DOWNLOAD_ENV, "1")
    clip._download(clip._MODELS["ViT-B/32"])
    assert fetched == [clip._MODELS["ViT-B/32"]]


def test_load_uses_a_local_checkpoint_by_name_or_path(home, tmp_path):
    state_dict = tiny_clip("tiny-rn").state_dict()
    cached = home / ".cache" / "clip" / "RN50.pt"
    cached.parent.mkdir(parents=True)
    torch.save(state_dict, cached)
    model, preprocess = clip.load("RN50", device="cpu")
    assert model.dtype == torch.float32 and model.visual.input_resolution == 224
    explicit, _ = clip.load(str(cached), device="cpu")
    torch.testing.assert_close(explicit.token_embedding.weight, model.token_embedding.weight)
    from PIL import Image

    assert preprocess(Image.new("RGB", (300, 200))).shape == (3, 224, 224)
    with pytest.raises(RuntimeError, match=r"neither a known CLIP name \(RN50, .*\) nor a checkpoint file"):
        clip.load("ViT-B/99", device="cpu")


# ---------------------------------------------------------------- my_dassl and clashing names


def test_my_dassl_imports_give_our_dassl_modules():
    from my_dassl.engine import TRAINER_REGISTRY as ALIASED
    from my_dassl.engine import TrainerX
    from my_dassl.utils import load_pretrained_weights

    assert ALIASED is TRAINER_REGISTRY and TrainerX is dassl.engine.TrainerX
    assert load_pretrained_weights is dassl.utils.load_pretrained_weights
    assert (
        sys.modules["my_dassl.data.datasets"] is sys.modules["dassl.data.datasets"] and sys.modules["my_dassl"] is dassl
    )


TWIN = textwrap.dedent(
    """
    from my_dassl.engine import TRAINER_REGISTRY, TrainerX


    @TRAINER_REGISTRY.register()
    class Twin(TrainerX):
        pass
    """
)


@pytest.fixture
def forget_twin():
    yield
    TRAINER_REGISTRY.unregister("Twin")


def test_a_second_trainer_under_a_taken_name_is_an_error_naming_both_modules(tmp_path, forget_twin):
    for name in ("first_twin", "second_twin"):
        (tmp_path / f"{name}.py").write_text(TWIN)
    plugins.import_plugin(str(tmp_path / "first_twin.py"))
    with pytest.raises(DuplicateRegistrationError) as error:
        plugins.import_plugin(str(tmp_path / "second_twin.py"))
    message = str(error.value)
    assert '"Twin" is already registered in "TRAINER" registry' in message
    assert "bbvp_plugin_first_twin.Twin" in message and "bbvp_plugin_second_twin.Twin" in message
    assert str(tmp_path / "first_twin.py") in message


def test_a_file_dropped_into_a_plugin_folder_cannot_silently_replace_a_trainer(tmp_path, monkeypatch, forget_twin):
    package = tmp_path / "dropin_trainers"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a_ours.py").write_text(TWIN)
    (package / "b_theirs.py").write_text(TWIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugins, "BUILTIN_PACKAGES", ("dropin_trainers",))
    with pytest.raises(DuplicateRegistrationError, match=r"dropin_trainers\.a_ours\.Twin.*dropin_trainers\.b_theirs"):
        plugins.load_plugins()
