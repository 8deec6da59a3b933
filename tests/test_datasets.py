"""All 16 dataset plugins on miniature copies of their on-disk layouts: names, labels, splits, few-shot caches."""

import json
import math
import os
import os.path as osp
import pickle
import random
import shutil
import subprocess
import sys
import textwrap
import types

import pytest

import train
from dassl.config import get_cfg_default
from dassl.data.data_manager import DatasetWrapper
from dassl.data.datasets import DATASET_REGISTRY, Datum, build_dataset
from datasets.caches import CACHE_FORMAT, METADATA_KEY, ROWS_FORMAT
from datasets.catalog import datasets
from datasets.errors import DatasetNotReadyError
from datasets.splits import subsample_classes
from tests.helpers.dataset_layouts import MINI, MINIS, PER_CLASS, build, build_complete_paper_layouts, make_cfg
from trainers.config import extend_cfg

train.load_plugins()
ids = [m.name for m in MINIS]


def per_class(items):
    counts = {}
    for item in items:
        counts[item.label] = counts.get(item.label, 0) + 1
    return counts


def relative(items, root):
    return [(osp.relpath(i.impath, root), i.label, i.classname) for i in items]


def fewshot_cache(root, mini, shots, seed):
    folder = (
        "split_fewshot_val=True_rho=0.8_0.2_ncl=99_rand=True" if mini.name == "ColourBiasedMNIST" else "split_fewshot"
    )
    return osp.join(root, mini.folder, folder, f"shot_{shots}-seed_{seed}.pkl")


# ------------------------------------------------------------------ registration and configs


def test_every_dataset_has_its_config_and_registered_name():
    config_file_names = {info.config: info.name for info in datasets()}
    assert len(config_file_names) == 16
    for stem, name in config_file_names.items():
        cfg = get_cfg_default()
        extend_cfg(cfg)
        cfg.merge_from_file(osp.join("configs", "datasets", f"{stem}.yaml"))
        assert cfg.DATASET.NAME == name and name in DATASET_REGISTRY


def test_coop_static_helpers_are_reachable_the_coop_way():
    from datasets.dtd import DescribableTextures
    from datasets.oxford_pets import OxfordPets

    for helper in ("read_split", "save_split", "split_trainval", "subsample_classes"):
        assert callable(getattr(OxfordPets, helper))
    assert callable(DescribableTextures.read_and_split_data)


# ------------------------------------------------------------------ full splits from the published layout


@pytest.mark.parametrize("mini", MINIS, ids=ids)
def test_full_split_names_labels_and_sizes(tmp_path, mini):
    root = tmp_path / "data"
    mini.make(root)
    ds = build(root, mini.name)
    assert ds.classnames == mini.classnames
    assert ds.lab2cname == dict(enumerate(mini.classnames))
    assert {"train": len(ds.train_x), "val": len(ds.val), "test": len(ds.test)} == mini.counts()
    for item in ds.train_x + ds.val + ds.test:
        assert item.classname == mini.classnames[item.label]
        assert osp.isfile(item.impath) and item.impath.startswith(str(root / mini.folder))


def test_clevr_label_order_is_lexicographic(tmp_path):
    MINI["CLEVR"].make(tmp_path)
    ds = build(tmp_path, "CLEVR")
    assert ds.lab2cname[0] == "10" and ds.classnames == sorted(ds.classnames)


# ------------------------------------------------------------------ few-shot subsets and their caches


@pytest.mark.parametrize("mini", MINIS, ids=ids)
def test_fewshot_counts_cache_round_trip_and_moved_root(tmp_path, mini, capsys):
    root = tmp_path / "data"
    mini.make(root)
    ds = build(root, mini.name, shots=5, seed=2)
    n_train = PER_CLASS["train"] + PER_CLASS["val"] if mini.val_is_test else PER_CLASS["train"]
    assert set(per_class(ds.train_x).values()) == {min(5, n_train)}
    if mini.name == "ImageNet":
        assert ds.val is ds.test
    else:
        n_val = PER_CLASS["test"] if mini.val_is_test else PER_CLASS["val"]
        assert set(per_class(ds.val).values()) == {min(4, n_val)}
    assert len(ds.test) == mini.counts()["test"]

    cache = fewshot_cache(root, mini, 5, 2)
    assert osp.isfile(cache)
    with open(cache, "rb") as f:
        data = pickle.load(f)
    assert data[METADATA_KEY]["format"] == CACHE_FORMAT and isinstance(data["train"][0], Datum)
    assert osp.isabs(data["train"][0].impath) and relative(data["train"], root) == relative(ds.train_x, root)
    assert ("val" in data) == (mini.name != "ImageNet")

    capsys.readouterr()
    again = build(root, mini.name, shots=5, seed=2)
    assert "Loading few-shot subset from" in capsys.readouterr().out
    assert relative(again.train_x, root) == relative(ds.train_x, root)

    moved = tmp_path / "moved"
    shutil.move(str(root), str(moved))
    there = build(moved, mini.name, shots=5, seed=2)
    assert "Loading few-shot subset from" in capsys.readouterr().out
    assert relative(there.train_x, moved) == relative(ds.train_x, root)
    assert relative(there.val, moved) == relative(ds.val, root)
    assert all(item.impath.startswith(str(moved)) for item in there.train_x)


@pytest.mark.parametrize("mini", MINIS, ids=ids)
def test_subsample_base_and_new(tmp_path, mini):
    mini.make(tmp_path)
    m = math.ceil(len(mini.classnames) / 2)
    base = build(tmp_path, mini.name, subsample="base")
    new = build(tmp_path, mini.name, subsample="new")
    assert base.classnames == mini.classnames[:m] and new.classnames == mini.classnames[m:]
    assert sorted(per_class(new.train_x)) == list(range(len(mini.classnames) - m))
    assert {i.label for i in new.test} == set(range(len(mini.classnames) - m))


def test_subsample_takes_ceil_half_of_sorted_labels(tmp_path):
    img = tmp_path / "x.png"
    img.write_bytes(b"")
    items = [Datum(str(img), label=y, classname=f"c{y}") for y in (4, 0, 2, 1, 3)]
    (base,) = subsample_classes(items, subsample="base")
    (new,) = subsample_classes(items, subsample="new")
    assert sorted((d.label, d.classname) for d in base) == [(0, "c0"), (1, "c1"), (2, "c2")]
    assert sorted((d.label, d.classname) for d in new) == [(0, "c3"), (1, "c4")]
    with pytest.raises(ValueError, match="SUBSAMPLE_CLASSES"):
        subsample_classes(items, subsample="half")


def test_fewshot_matches_coop_sampling_and_ignores_unrelated_draws(tmp_path):
    from dassl.data.datasets import DatasetBase
    from datasets.oxford_pets import OxfordPets

    mini = MINI["OxfordPets"]
    ddir = mini.make(tmp_path)
    full_train, full_val, _ = OxfordPets.read_split(osp.join(ddir, mini.split_file), osp.join(ddir, "images"))
    helper = DatasetBase(train_x=full_train)
    random.seed(3)
    expected_train = helper.generate_fewshot_dataset(full_train, num_shots=2)
    expected_val = helper.generate_fewshot_dataset(full_val, num_shots=2)

    random.seed(99)
    [random.random() for _ in range(17)]
    ds = build(tmp_path, "OxfordPets", shots=2, seed=3)
    assert [d.impath for d in ds.train_x] == [d.impath for d in expected_train]
    assert [d.impath for d in ds.val] == [d.impath for d in expected_val]


def test_unseeded_run_samples_and_caches_under_seed_minus_one(tmp_path):
    mini = MINI["DescribableTextures"]
    mini.make(tmp_path)
    ds = build(tmp_path, mini.name, shots=3, seed=-1)
    assert set(per_class(ds.train_x).values()) == {3}
    assert osp.isfile(fewshot_cache(tmp_path, mini, 3, -1))


# ------------------------------------------------------------------ caches written by CoOp / BlackVIP


def legacy_pickle(path, data, module="dassl.data.datasets.base_dataset", monkeypatch=None):
    """Pickle ``data`` the way CoOp (or BlackVIP's ``my_dassl`` copy) did: Datum objects, absolute paths."""
    if module != Datum.__module__:
        parts = module.split(".")
        for i in range(1, len(parts) + 1):
            monkeypatch.setitem(sys.modules, ".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
        legacy_cls = type("Datum", (), {"__module__": module})
        sys.modules[module].Datum = legacy_cls
        converted = {}
        for key, items in data.items():
            converted[key] = []
            for d in items:
                obj = legacy_cls.__new__(legacy_cls)
                obj.__dict__.update(d.__dict__)
                converted[key].append(obj)
        data = converted
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)


def with_old_root(items, new_root, old_root):
    """Datum copies whose absolute paths point into ``old_root`` (files there need not exist)."""
    out = []
    for d in items:
        obj = Datum.__new__(Datum)
        obj.__dict__.update(d.__dict__, _impath=d.impath.replace(str(new_root), str(old_root)))
        out.append(obj)
    return out


@pytest.mark.parametrize("module", ["dassl.data.datasets.base_dataset", "my_dassl.data.datasets.base_dataset"])
def test_old_absolute_path_datum_caches_load(tmp_path, module, monkeypatch):
    mini = MINI["EuroSAT"]
    mini.make(tmp_path / "data")
    full = build(tmp_path / "data", "EuroSAT")
    picked = {"train": full.train_x[::3], "val": full.val[::4]}
    cache = fewshot_cache(tmp_path / "data", mini, 4, 1)
    legacy_pickle(cache, picked, module, monkeypatch)
    ds = build(tmp_path / "data", "EuroSAT", shots=4, seed=1)
    assert [d.impath for d in ds.train_x] == [d.impath for d in picked["train"]]
    assert [d.impath for d in ds.val] == [d.impath for d in picked["val"]]

    old = {k: with_old_root(v, tmp_path / "data", "/gone/old_machine/data") for k, v in picked.items()}
    legacy_pickle(cache, old, module, monkeypatch)
    ds = build(tmp_path / "data", "EuroSAT", shots=4, seed=1)
    assert [d.impath for d in ds.train_x] == [d.impath for d in picked["train"]]


def test_old_imagenet_preprocessed_pickle_loads(tmp_path):
    mini = MINI["ImageNet"]
    mini.make(tmp_path / "data")
    full = build(tmp_path / "data", "ImageNet")
    os.remove(tmp_path / "data" / "imagenet" / "preprocessed.pkl")
    old = {
        "train": with_old_root(full.train_x, tmp_path / "data", "/gone/data"),
        "test": with_old_root(full.test, tmp_path / "data", "/gone/data"),
    }
    legacy_pickle(str(tmp_path / "data" / "imagenet" / "preprocessed.pkl"), old)
    ds = build(tmp_path / "data", "ImageNet")
    assert [d.impath for d in ds.train_x] == [d.impath for d in full.train_x]
    assert ds.classnames == mini.classnames and ds.val is ds.test


COOP_DATUM = """
class Datum:
    def __init__(self, impath="", label=0, domain=0, classname=""):
        self._impath, self._label, self._domain, self._classname = impath, label, domain, classname

    impath = property(lambda self: self._impath)
    label = property(lambda self: self._label)
    domain = property(lambda self: self._domain)
    classname = property(lambda self: self._classname)
"""

COOP_READER = """
import pickle, sys
sys.path.insert(0, sys.argv[1])
import dassl.data.datasets.base_dataset as coop
with open(sys.argv[2], "rb") as f:
    data = pickle.load(f)
for key in sys.argv[3:]:
    for item in data[key]:
        assert type(item) is coop.Datum and type(item.label) is int and item.domain == 0
        print(key, item.impath, item.label, item.classname, sep="\\t")
"""


def read_as_coop(tmp_path, cache, *keys):
    """What a CoOp checkout sees in ``cache``: ``pickle.load`` with Dassl's own ``Datum`` (a stand-in with its
    module path and attribute names, not this toolkit's) and ``.impath``, ``.label``, ``.classname`` of each item."""
    checkout = tmp_path / "coop_checkout"
    module = checkout / "dassl" / "data" / "datasets" / "base_dataset.py"
    module.parent.mkdir(parents=True, exist_ok=True)
    module.write_text(textwrap.dedent(COOP_DATUM))
    proc = subprocess.run(
        [sys.executable, "-I", "-c", COOP_READER, str(checkout), str(cache), *keys],
        capture_output=True,
        text=True,
        cwd=checkout,
    )
    assert proc.returncode == 0, proc.stderr
    return [line.split("\t") for line in proc.stdout.splitlines()]


@pytest.mark.parametrize("name", ["EuroSAT", "ImageNet"])
def test_coop_reads_the_caches_we_write(tmp_path, name):
    mini = MINI[name]
    mini.make(tmp_path / "data")
    ds = build(tmp_path / "data", name, shots=2, seed=1)
    keys = ("train",) if name == "ImageNet" else ("train", "val")
    rows = read_as_coop(tmp_path, fewshot_cache(tmp_path / "data", mini, 2, 1), *keys)
    lists = {"train": ds.train_x, "val": ds.val}
    want = [(k, d.impath, str(d.label), d.classname) for k in keys for d in lists[k]]
    assert [tuple(r) for r in rows] == want
    if name == "ImageNet":
        scanned = read_as_coop(tmp_path, tmp_path / "data" / "imagenet" / "preprocessed.pkl", "train", "test")
        assert len(scanned) == mini.counts()["train"] + mini.counts()["test"]


def write_rows_cache(path, dataset_dir, splits, source=None):
    """A cache as earlier versions of this toolkit wrote it: relative rows, top-level format and source keys."""
    data = {"format": ROWS_FORMAT, **({"source": source} if source else {})}
    for key, records in splits.items():
        data[key] = [[osp.relpath(r.impath, dataset_dir), int(r.label), r.classname] for r in records]
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(data, f)


def test_earlier_toolkit_caches_are_used_and_rewritten_for_coop(tmp_path, capsys):
    mini = MINI["EuroSAT"]
    ddir = mini.make(tmp_path / "data")
    first = build(tmp_path / "data", "EuroSAT", shots=2, seed=1)
    cache = fewshot_cache(tmp_path / "data", mini, 2, 1)
    with open(cache, "rb") as f:
        source = pickle.load(f)[METADATA_KEY]["source"]
    write_rows_cache(cache, ddir, {"train": first.train_x, "val": first.val}, source)
    capsys.readouterr()
    again = build(tmp_path / "data", "EuroSAT", shots=2, seed=1)
    assert f"Rewrote {cache} in CoOp's cache format" in capsys.readouterr().out
    assert relative(again.train_x, ddir) == relative(first.train_x, ddir)
    assert [r[1] for r in read_as_coop(tmp_path, cache, "train")] == [d.impath for d in first.train_x]
    with open(cache, "rb") as f:
        assert pickle.load(f)[METADATA_KEY]["source"] == source


def test_a_cache_with_foreign_objects_is_refused(tmp_path):
    mini = MINI["DescribableTextures"]
    mini.make(tmp_path)
    cache = fewshot_cache(tmp_path, mini, 2, 1)
    os.makedirs(osp.dirname(cache))
    with open(cache, "wb") as f:
        pickle.dump({"train": [types.SimpleNamespace()], "val": []}, f)
    with pytest.raises(RuntimeError, match="Delete it"):
        build(tmp_path, mini.name, shots=2, seed=1)


# ------------------------------------------------------------------ raw-file fallbacks and created splits

RAW = [m for m in MINIS if m.created_split]


@pytest.mark.parametrize("mini", RAW, ids=[m.name for m in RAW])
def test_raw_fallback_names_and_created_split(tmp_path, mini, capsys):
    ddirs = []
    for copy in ("a", "b"):
        ddir = mini.make(tmp_path / copy)
        os.remove(osp.join(ddir, mini.split_file))
        ds = build(tmp_path / copy, mini.name)
        assert ds.classnames == mini.raw_classnames
        created = osp.join(ddir, mini.created_split)
        assert osp.isfile(created)
        if mini.created_split != mini.split_file:
            assert not osp.exists(osp.join(ddir, mini.split_file))
        ddirs.append(ddir)
    with open(osp.join(ddirs[0], mini.created_split)) as f:
        split = json.load(f)
    with open(osp.join(ddirs[1], mini.created_split)) as f:
        assert json.load(f) == split
    assert set(split) == {"train", "val", "test"}
    for path, label, classname in split["train"]:
        assert isinstance(path, str) and not osp.isabs(path) and "\\" not in path
        assert isinstance(label, int) and classname == mini.raw_classnames[label]
    capsys.readouterr()
    build(tmp_path / "a", mini.name)
    assert f"Reading split from {osp.join(ddirs[0], mini.created_split)}" in capsys.readouterr().out


def test_fgvc_aircraft_reads_its_list_files(tmp_path):
    MINI["FGVCAircraft"].make(tmp_path)
    ds = build(tmp_path, "FGVCAircraft")
    assert "Boeing 717" in ds.classnames
    assert not any(name.startswith("split_") for name in os.listdir(tmp_path / "fgvc_aircraft"))


# ------------------------------------------------------------------ SVHN


def test_svhn_prefers_the_published_split(tmp_path):
    ddir = MINI["SVHN"].make(tmp_path)
    with open(osp.join(ddir, "split_mlai_SVHN.json")) as f:
        published = json.load(f)
    own = {"train": published["train"][:4], "val": published["val"][:4], "test": []}
    with open(osp.join(ddir, "split_SVHN.json"), "w") as f:
        json.dump(own, f)
    ds = build(tmp_path, "SVHN")
    assert len(ds.train_x) == len(published["train"])
    os.remove(osp.join(ddir, "split_mlai_SVHN.json"))
    ds = build(tmp_path, "SVHN")
    assert len(ds.train_x) == 4


def test_svhn_created_split_is_seeded_and_test_is_sorted(tmp_path):
    ddir = MINI["SVHN"].make(tmp_path)
    os.remove(osp.join(ddir, "split_mlai_SVHN.json"))
    random.seed(12345)
    ds = build(tmp_path, "SVHN", seed=7)
    assert not osp.exists(osp.join(ddir, "split_mlai_SVHN.json"))
    with open(osp.join(ddir, "split_SVHN.json")) as f:
        first = json.load(f)
    assert first["train"][0][0].count("/") == 1
    os.remove(osp.join(ddir, "split_SVHN.json"))
    random.seed(1)
    build(tmp_path, "SVHN", seed=1)
    with open(osp.join(ddir, "split_SVHN.json")) as f:
        assert json.load(f) == first
    per = per_class(ds.train_x)
    assert per == {d: 8 for d in range(4)} and set(per_class(ds.val).values()) == {3}
    keys = [(d.label, osp.basename(d.impath)) for d in ds.test]
    assert keys == sorted(keys) and len(keys) == 8


def test_split_paths_relative_to_the_dataset_folder_also_resolve(tmp_path):
    ddir = MINI["SVHN"].make(tmp_path)
    path = osp.join(ddir, "split_mlai_SVHN.json")
    with open(path) as f:
        split = json.load(f)
    split = {k: [["train/" + p, y, c] for p, y, c in rows] for k, rows in split.items()}
    with open(path, "w") as f:
        json.dump(split, f)
    ds = build(tmp_path, "SVHN")
    assert len(ds.train_x) == 24 and all(osp.isfile(d.impath) for d in ds.train_x)


# ------------------------------------------------------------------ synthetic sets follow the config


def test_locmnist_folder_follows_f_size(tmp_path):
    build_complete_paper_layouts(tmp_path)
    ds = build(tmp_path, "LocMNIST", opts=["DATASET.LOCMNIST.F_SIZE", 1])
    assert all("locmnist_r1_f1" in d.impath for d in ds.train_x + ds.test)


def test_colour_biased_folders_follow_rho_and_val_setting(tmp_path):
    build_complete_paper_layouts(tmp_path)
    ds = build(
        tmp_path,
        "ColourBiasedMNIST",
        opts=["DATASET.COLOUR_BIASED_MNIST.TRAIN_RHO", 0.9, "DATASET.COLOUR_BIASED_MNIST.TEST_RHO", 0.1],
    )
    assert all("images_rho=0.9_ncl=9_rand=True/train" in d.impath for d in ds.train_x)
    assert all("images_rho=0.1_ncl=9_rand=True/test" in d.impath for d in ds.test)
    ds = build(tmp_path, "ColourBiasedMNIST", opts=["DATASET.COLOUR_BIASED_MNIST.USE_TEST_AS_VAL", False])
    assert ds.val == [] and len(ds.test) == 8


# ------------------------------------------------------------------ errors


def test_missing_dataset_folder_names_dataset_layout_and_command(tmp_path):
    with pytest.raises(DatasetNotReadyError) as info:
        build(tmp_path, "OxfordPets")
    message = str(info.value)
    assert message.startswith("OxfordPets: dataset folder not found")
    assert "oxford_pets/" in message and "split_zhou_OxfordPets.json" in message and "images/" in message
    assert f"python -m datasets.prepare OxfordPets --root {tmp_path}" in message


def test_missing_split_without_raw_files_lists_both(tmp_path):
    ddir = MINI["OxfordPets"].make(tmp_path)
    os.remove(osp.join(ddir, "split_zhou_OxfordPets.json"))
    shutil.rmtree(osp.join(ddir, "annotations"))
    with pytest.raises(DatasetNotReadyError, match=r"(?s)split_zhou_OxfordPets.json.*annotations/trainval.txt"):
        build(tmp_path, "OxfordPets")


def test_missing_list_file_is_reported(tmp_path):
    ddir = MINI["FGVCAircraft"].make(tmp_path)
    os.remove(osp.join(ddir, "variants.txt"))
    with pytest.raises(DatasetNotReadyError, match="variants.txt .missing."):
        build(tmp_path, "FGVCAircraft")


def test_missing_image_names_dataset_path_and_command(tmp_path):
    ddir = MINI["Food101"].make(tmp_path)
    gone = osp.join(ddir, "images", "baklava", "100003.jpg")
    os.remove(gone)
    with pytest.raises(DatasetNotReadyError) as info:
        build(tmp_path, "Food101")
    assert str(info.value).startswith("Food101:") and gone in str(info.value)
    assert "python -m datasets.prepare Food101" in str(info.value)


def test_missing_generated_folders_give_the_generator_command(tmp_path):
    with pytest.raises(DatasetNotReadyError) as info:
        build(tmp_path, "LocMNIST", opts=["DATASET.LOCMNIST.F_SIZE", 1])
    assert f"python -m datasets.make_locmnist --root {tmp_path} --f-size 1 --r-size 1" in str(info.value)
    with pytest.raises(DatasetNotReadyError) as info:
        build(
            tmp_path,
            "ColourBiasedMNIST",
            opts=["DATASET.COLOUR_BIASED_MNIST.TRAIN_RHO", 0.9, "DATASET.COLOUR_BIASED_MNIST.TEST_RHO", 0.1],
        )
    assert (
        f"python -m datasets.make_colour_biased_mnist --root {tmp_path} --train-rho 0.9 --test-rho 0.1 --randomize"
    ) in str(info.value)


def test_a_corrupt_image_surfaces_with_its_path(tmp_path):
    MINI["DescribableTextures"].make(tmp_path)
    cfg = make_cfg(tmp_path, "DescribableTextures")
    ds = build_dataset(cfg)
    with open(ds.train_x[0].impath, "wb") as f:
        f.write(b"not an image")
    with pytest.raises(OSError, match="Cannot read image") as info:
        DatasetWrapper(cfg, ds.train_x)[0]
    assert ds.train_x[0].impath in str(info.value)


# ------------------------------------------------------------------ end to end through train.py


def test_train_py_runs_on_a_dataset_plugin(tmp_path):
    from tests.plugins import coop_style  # noqa: F401  (registers ToyTrainer)

    MINI["EuroSAT"].make(tmp_path / "data")
    trainer_yaml = tmp_path / "toy.yaml"
    trainer_yaml.write_text(
        "DATALOADER:\n  TRAIN_X:\n    BATCH_SIZE: 4\n  TEST:\n    BATCH_SIZE: 8\n  NUM_WORKERS: 0\n"
        "INPUT:\n  SIZE: (16, 16)\n  TRANSFORMS: ['normalize']\nOPTIM:\n  MAX_EPOCH: 1\n"
    )
    args = train.parse_args(
        [
            "--root",
            str(tmp_path / "data"),
            "--seed",
            "1",
            "--trainer",
            "ToyTrainer",
            "--dataset-config-file",
            "configs/datasets/eurosat.yaml",
            "--config-file",
            str(trainer_yaml),
            "--output-dir",
            str(tmp_path / "out"),
            "DATASET.NUM_SHOTS",
            "2",
        ]
    )
    results = train.main(args)
    assert results["dataset"] == "EuroSAT" and results["accuracy"] is not None
    assert osp.isfile(tmp_path / "data" / "eurosat" / "split_fewshot" / "shot_2-seed_1.pkl")
