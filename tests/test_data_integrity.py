"""Data a run trusts is either what it claims or refused: few-shot caches, NUM_SHOTS, generated folders, split files."""

import gzip
import hashlib
import json
import os
import os.path as osp
import pickle

import numpy as np
import pytest

import train
from datasets import make_colour_biased_mnist, make_locmnist, prepare
from datasets.caches import save_records_cache
from datasets.errors import DatasetNotReadyError
from datasets.generation import clear_leftovers
from datasets.manifests import MANIFEST, read_manifest, write_manifest
from datasets.splits import SplitFileError, read_split
from tests.helpers.dataset_layouts import MINI, build
from tests.test_datasets import fewshot_cache, legacy_pickle, per_class, write_rows_cache

train.load_plugins()


def load_json(path):
    with open(path) as f:
        return json.load(f)


def save_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)


def relative_rows(items, root):
    return {(osp.relpath(d.impath, root), d.label) for d in items}


def tree_digest(folder):
    """SHA-256 over every file's relative path and bytes under ``folder``."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(folder)):
        dirnames.sort()
        for name in sorted(filenames):
            path = osp.join(dirpath, name)
            digest.update(osp.relpath(path, folder).encode())
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


# ------------------------------------------------------------------ few-shot caches follow their source


def test_fewshot_cache_is_sampled_again_when_its_split_file_changes(tmp_path, capsys):
    ddir = MINI["EuroSAT"].make(tmp_path)
    first = build(tmp_path, "EuroSAT", shots=2, seed=1)
    cache = fewshot_cache(tmp_path, MINI["EuroSAT"], 2, 1)
    split_path = osp.join(ddir, "split_zhou_EuroSAT.json")
    split = load_json(split_path)
    moved = {osp.relpath(d.impath, osp.join(ddir, "2750")) for d in first.train_x}
    split["test"] += [row for row in split["train"] if row[0] in moved]
    split["train"] = [row for row in split["train"] if row[0] not in moved]
    save_json(split_path, split)
    capsys.readouterr()

    again = build(tmp_path, "EuroSAT", shots=2, seed=1)
    out = capsys.readouterr().out
    assert f"Rebuilding {cache}: the source split changed (split_zhou_EuroSAT.json differs" in out
    train_rows = relative_rows(again.train_x, ddir)
    assert not train_rows & relative_rows(again.test, ddir)
    assert set(per_class(again.train_x).values()) == {2}
    capsys.readouterr()
    build(tmp_path, "EuroSAT", shots=2, seed=1)
    assert f"Loading few-shot subset from {cache}" in capsys.readouterr().out


def test_imagenet_fewshot_cache_follows_the_scanned_folders(tmp_path, capsys):
    ddir = MINI["ImageNet"].make(tmp_path)
    first = build(tmp_path, "ImageNet", shots=2, seed=1)
    leaked = first.train_x[0].impath
    wnid = osp.basename(osp.dirname(leaked))
    os.replace(leaked, osp.join(ddir, "images", "val", wnid, osp.basename(leaked)))
    os.remove(osp.join(ddir, "preprocessed.pkl"))
    capsys.readouterr()

    again = build(tmp_path, "ImageNet", shots=2, seed=1)
    assert "the source split changed (the train/val lists it was sampled from differ" in capsys.readouterr().out
    assert osp.basename(leaked) not in {osp.basename(d.impath) for d in again.train_x}
    assert osp.basename(leaked) in {osp.basename(d.impath) for d in again.test}


def write_cache_without_source(kind, path, ddir, picked, monkeypatch):
    if kind == "datum":
        legacy_pickle(path, picked, "my_dassl.data.datasets.base_dataset", monkeypatch)
    elif kind == "relative-rows":
        write_rows_cache(path, ddir, picked)
    else:
        os.makedirs(osp.dirname(path), exist_ok=True)
        save_records_cache(path, ddir, picked)


@pytest.mark.parametrize("kind", ["datum", "relative-rows", "coop-datum"])
def test_cache_without_a_source_is_used_only_while_its_items_are_in_the_split(tmp_path, kind, monkeypatch, capsys):
    ddir = MINI["EuroSAT"].make(tmp_path)
    full = build(tmp_path, "EuroSAT")
    picked = {"train": full.train_x[::3], "val": full.val[::4]}
    cache = fewshot_cache(tmp_path, MINI["EuroSAT"], 2, 1)
    write_cache_without_source(kind, cache, ddir, picked, monkeypatch)
    ds = build(tmp_path, "EuroSAT", shots=2, seed=1)
    assert [d.impath for d in ds.train_x] == [d.impath for d in picked["train"]]

    split_path = osp.join(ddir, "split_zhou_EuroSAT.json")
    split = load_json(split_path)
    stray = osp.relpath(picked["train"][1].impath, osp.join(ddir, "2750"))
    split["test"] += [row for row in split["train"] if row[0] == stray]
    split["train"] = [row for row in split["train"] if row[0] != stray]
    save_json(split_path, split)
    with open(cache, "rb") as f:
        before = f.read()
    with pytest.raises(RuntimeError) as info:
        build(tmp_path, "EuroSAT", shots=2, seed=1)
    message = str(info.value)
    assert cache in message and "delete it" in message and stray in message and "1 of its" in message
    with open(cache, "rb") as f:
        assert f.read() == before


def test_cache_without_a_source_is_refused_when_a_label_changed(tmp_path, monkeypatch):
    ddir = MINI["EuroSAT"].make(tmp_path)
    full = build(tmp_path, "EuroSAT")
    cache = fewshot_cache(tmp_path, MINI["EuroSAT"], 2, 1)
    legacy_pickle(cache, {"train": full.train_x[:2], "val": full.val[:2]})
    split_path = osp.join(ddir, "split_zhou_EuroSAT.json")
    split = load_json(split_path)
    split["val"][0][1] = 3
    save_json(split_path, split)
    with pytest.raises(RuntimeError, match="val items are not in the current val list with the same label"):
        build(tmp_path, "EuroSAT", shots=2, seed=1)


def test_a_rebuilt_cache_records_its_source_for_readers_of_the_records(tmp_path):
    from datasets.caches import load_records_cache

    ddir = MINI["DescribableTextures"].make(tmp_path)
    build(tmp_path, "DescribableTextures", shots=3, seed=2)
    cache = fewshot_cache(tmp_path, MINI["DescribableTextures"], 3, 2)
    with open(cache, "rb") as f:
        data = pickle.load(f)
    source = data["bbvp"]["source"]
    assert source["split_file"] == "split_zhou_DescribableTextures.json"
    assert len(source["records"]) == 64 and source["num_shots"] == 3
    assert sorted(load_records_cache(cache, ddir)) == ["train", "val"]


# ------------------------------------------------------------------ NUM_SHOTS must mean what it says


def test_num_shots_above_every_class_is_refused(tmp_path):
    MINI["EuroSAT"].make(tmp_path)
    with pytest.raises(ValueError) as info:
        build(tmp_path, "EuroSAT", shots=100, seed=1)
    message = str(info.value)
    assert "DATASET.NUM_SHOTS 100" in message and "largest class has 6" in message
    assert "DATASET.NUM_SHOTS 6 or less, or -1" in message
    assert not osp.exists(fewshot_cache(tmp_path, MINI["EuroSAT"], 100, 1))


def test_num_shots_above_some_classes_warns_and_names_them(tmp_path, capsys):
    ddir = MINI["EuroSAT"].make(tmp_path)
    split_path = osp.join(ddir, "split_zhou_EuroSAT.json")
    split = load_json(split_path)
    forest = [row for row in split["train"] if row[1] == 1]
    split["train"] = [row for row in split["train"] if row[1] != 1] + forest[:2]
    save_json(split_path, split)
    ds = build(tmp_path, "EuroSAT", shots=4, seed=1)
    out = capsys.readouterr().out
    assert "Warning: DATASET.NUM_SHOTS 4 exceeds the training images of 1 of 4 classes" in out
    assert "keep all of theirs: Forest (2)\n" in out
    assert per_class(ds.train_x) == {0: 4, 1: 2, 2: 4, 3: 4}


@pytest.mark.parametrize("shots", [0, -2])
def test_num_shots_zero_or_below_minus_one_is_refused(tmp_path, shots):
    MINI["DescribableTextures"].make(tmp_path)
    with pytest.raises(ValueError, match=f"DATASET.NUM_SHOTS must be .* or -1 for all of them, got {shots}"):
        build(tmp_path, "DescribableTextures", shots=shots)


# ------------------------------------------------------------------ generated folders: whole, with a manifest


def write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_mnist(tmp_path):
    """Torchvision's idx files with 3 train and 1 test digit per class (enough for Loc-MNIST's 80/20 split)."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 10)):
        write_idx(str(folder / f"{prefix}-images-idx3-ubyte.gz"), rng.integers(0, 256, (n, 28, 28)))
        write_idx(str(folder / f"{prefix}-labels-idx1-ubyte.gz"), np.arange(n) % 10)
    return str(folder)


def make_locmnist_args(root, mnist, seed):
    return ["--root", str(root), "--f-size", "1", "--mnist-dir", mnist, "--seed", str(seed)]


def test_locmnist_generation_replaces_the_folder_whole_and_records_its_parameters(tmp_path, tiny_mnist, monkeypatch):
    root = tmp_path / "data"
    assert make_locmnist.main(make_locmnist_args(root, tiny_mnist, 1)) == 0
    output = root / "locmnist_r1_f1"
    manifest = read_manifest(str(output))
    assert manifest["generator"] == "datasets.make_locmnist" and manifest["version"] == 1
    assert manifest["params"]["f_size"] == 1 and manifest["params"]["seed"] == 1
    assert (output / "split_LocMNIST.json").is_file()
    before = tree_digest(output)

    real = make_locmnist.generate_split

    def dies_during_test(digits, out_dir, *args, **kwargs):
        if out_dir.endswith("test"):
            raise KeyboardInterrupt
        return real(digits, out_dir, *args, **kwargs)

    monkeypatch.setattr(make_locmnist, "generate_split", dies_during_test)
    with pytest.raises(KeyboardInterrupt):
        make_locmnist.main(make_locmnist_args(root, tiny_mnist, 2))
    assert tree_digest(output) == before
    assert sorted(os.listdir(root)) == ["locmnist_r1_f1"]

    monkeypatch.setattr(make_locmnist, "generate_split", real)
    (root / ".locmnist_r1_f1.partial" / "train").mkdir(parents=True)
    assert make_locmnist.main(make_locmnist_args(root, tiny_mnist, 2)) == 0
    assert sorted(os.listdir(root)) == ["locmnist_r1_f1"]
    assert read_manifest(str(output))["params"]["seed"] == 2 and tree_digest(output) != before
    ds = build(root, "LocMNIST", opts=["DATASET.LOCMNIST.F_SIZE", 1])
    assert len(ds.train_x) + len(ds.val) == 30 and len(ds.test) == 10


def test_an_output_moved_aside_by_a_killed_swap_is_restored(tmp_path):
    final = tmp_path / "locmnist_r1_f1"
    (tmp_path / ".locmnist_r1_f1.previous" / "train").mkdir(parents=True)
    (tmp_path / ".locmnist_r1_f1.partial").mkdir()
    clear_leftovers(str(final))
    assert sorted(os.listdir(tmp_path)) == ["locmnist_r1_f1"] and (final / "train").is_dir()


def test_colour_biased_generation_writes_a_manifest_per_split(tmp_path, tiny_mnist):
    root = tmp_path / "data"
    args = ["--root", str(root), "--mnist-dir", tiny_mnist, "--train-rho", "0.7", "--test-rho", "0.3"]
    assert make_colour_biased_mnist.main(args) == 0
    base = root / "colour_biased_mnist"
    train_manifest = read_manifest(str(base / "images_rho=0.7_ncl=9_rand=True" / "train"))
    test_manifest = read_manifest(str(base / "images_rho=0.3_ncl=9_rand=True" / "test"))
    assert train_manifest["params"]["rho"] == 0.7 and train_manifest["params"]["split"] == "train"
    assert test_manifest["params"]["rho"] == 0.3 and test_manifest["params"]["n_confusing_labels"] == 9
    opts = ["DATASET.COLOUR_BIASED_MNIST.TRAIN_RHO", 0.7, "DATASET.COLOUR_BIASED_MNIST.TEST_RHO", 0.3]
    assert len(build(root, "ColourBiasedMNIST", opts=opts).train_x) == 30
    assert prepare.main(["colour_biased_mnist", "--root", str(root)]) == 1  # the paper settings are not generated


def test_prepare_and_the_loader_check_the_manifest(tmp_path, capsys):
    ddir = MINI["LocMNIST"].make(tmp_path)
    command = f"python -m datasets.make_locmnist --root {tmp_path} --f-size 4 --r-size 1 --download"
    assert prepare.main(["locmnist", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"UNKNOWN  {MANIFEST}" in out and f'"{ddir}" has no {MANIFEST}' in out and command in out

    ds = build(tmp_path, "LocMNIST")
    out = capsys.readouterr().out
    assert f'Warning: LocMNIST in "{ddir}": "{ddir}" has no {MANIFEST}' in out and command in out
    assert len(ds.train_x) == 24

    write_manifest(ddir, "datasets.make_locmnist", 1, {"r_size": 1, "f_size": 1, "seed": 1})
    assert prepare.main(["locmnist", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH generator.json" in out and "f_size=1 (expected 4)" in out and command in out
    with pytest.raises(DatasetNotReadyError) as info:
        build(tmp_path, "LocMNIST")
    assert "f_size=1 (expected 4)" in str(info.value) and command in str(info.value)

    write_manifest(ddir, "datasets.make_locmnist", 1, {"r_size": 1, "f_size": 4, "seed": 1})
    capsys.readouterr()
    build(tmp_path, "LocMNIST")
    assert "Warning" not in capsys.readouterr().out


def test_the_loader_refuses_a_colour_biased_folder_made_with_another_rho(tmp_path):
    ddir = MINI["ColourBiasedMNIST"].make(tmp_path)
    folder = osp.join(ddir, "images_rho=0.8_ncl=9_rand=True", "train")
    write_manifest(folder, "datasets.make_colour_biased_mnist", 1, {"split": "train", "rho": 0.9})
    with pytest.raises(DatasetNotReadyError) as info:
        build(tmp_path, "ColourBiasedMNIST")
    message = str(info.value)
    assert "rho=0.9 (expected 0.8)" in message and "no n_confusing_labels (expected 9)" in message
    assert "python -m datasets.make_colour_biased_mnist" in message


def test_a_damaged_manifest_is_reported_not_trusted(tmp_path, capsys):
    ddir = MINI["LocMNIST"].make(tmp_path)
    with open(osp.join(ddir, MANIFEST), "w") as f:
        f.write('{"generator": ')
    assert prepare.main(["locmnist", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "UNKNOWN" in out and f'cannot read "{osp.join(ddir, MANIFEST)}"' in out


# ------------------------------------------------------------------ damaged split files


@pytest.mark.parametrize("content", ["", '{"train": [["2750/Forest/Forest_1.jpg", 1, "Forest"]', "[]"])
def test_a_damaged_published_split_names_the_file_and_says_to_restore_it(tmp_path, content):
    ddir = MINI["EuroSAT"].make(tmp_path)
    split_path = osp.join(ddir, "split_zhou_EuroSAT.json")
    with open(split_path, "w") as f:
        f.write(content)
    with pytest.raises(SplitFileError) as info:
        build(tmp_path, "EuroSAT")
    message = str(info.value)
    assert f'Cannot read the split file "{split_path}"' in message
    assert "published split: restore it" in message and "drive.google.com" in message
    with open(split_path) as f:
        assert f.read() == content


def test_a_damaged_created_split_says_to_delete_it_and_is_recreated(tmp_path):
    ddir = MINI["SVHN"].make(tmp_path)
    os.remove(osp.join(ddir, "split_mlai_SVHN.json"))
    first = build(tmp_path, "SVHN")
    created = osp.join(ddir, "split_SVHN.json")
    with open(created, "w") as f:
        f.write("")
    with pytest.raises(ValueError, match=r"it is empty\. This project created it .* delete it"):
        build(tmp_path, "SVHN")
    os.remove(created)
    assert [d.impath for d in build(tmp_path, "SVHN").train_x] == [d.impath for d in first.train_x]


def test_coop_read_split_names_a_damaged_file(tmp_path):
    path = tmp_path / "split_zhou_Foo.json"
    path.write_text('{"train": [["a.jpg", 0')
    with pytest.raises(ValueError, match=f'split file "{path}": it is not valid JSON'):
        read_split(str(path), str(tmp_path))
