"""Miniature copies of every dataset's on-disk layout: tiny images, the split file in the real schema, raw files.

Each ``Mini`` writes its dataset under a data root. Every class has 6 train, 5 val and 2 test images in the
published split; the raw annotation files describe the same images, so deleting the split file exercises the
dataset's raw fallback.
"""

from __future__ import annotations

import json
import os
import os.path as osp
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from dassl.config import get_cfg_default
from dassl.data.datasets import build_dataset
from datasets.catalog import config_with, synthetic_settings
from trainers.config import extend_cfg

PER_CLASS = {"train": 6, "val": 5, "test": 2}


def write_image(path: str, seed: int = 0) -> None:
    """A 4x4 RGB image (JPG or PNG by extension)."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def write_text(path: str, lines: list[str]) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def write_json(path: str, obj) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=4)


@dataclass
class Image_:
    """One miniature image: path under the dataset folder, label, class name, role in the published split, index."""

    path: str
    label: int
    classname: str
    role: str
    index: int


def images_for(classes: list[tuple[str, str]], path_of: Callable[[int, str, int, str], str]) -> list[Image_]:
    """``PER_CLASS`` images per (folder, classname); ``path_of(label, folder, i, role)`` gives the path."""
    images, counter = [], 0
    for label, (folder, classname) in enumerate(classes):
        i = 0
        for role, n in PER_CLASS.items():
            for _ in range(n):
                counter += 1
                images.append(Image_(path_of(label, folder, i, role), label, classname, role, counter))
                i += 1
    return images


def write_images(ddir: str, images: list[Image_]) -> None:
    for image in images:
        write_image(osp.join(ddir, image.path), seed=image.index)


def split_json(images: list[Image_], prefix: str, roles=("train", "val", "test")) -> dict:
    """The split file: rows ``[path relative to prefix, label, classname]`` per role."""

    def rel(path):
        return osp.relpath(path, prefix) if prefix else path

    return {role: [[rel(im.path), im.label, im.classname] for im in images if im.role == role] for role in roles}


@dataclass
class Mini:
    """A miniature dataset: what to build and what the dataset class must report."""

    name: str
    config: str
    folder: str
    classnames: list[str]
    build: Callable[[str], None]
    split_file: str | None = None
    created_split: str | None = None
    raw_classnames: list[str] | None = None
    opts: list = field(default_factory=list)
    val_is_test: bool = False

    def make(self, root: str) -> str:
        self.build(str(root))
        return osp.join(str(root), self.folder)

    def counts(self) -> dict[str, int]:
        """Full-split sizes."""
        n = len(self.classnames)
        if self.val_is_test:
            return {
                "train": n * (PER_CLASS["train"] + PER_CLASS["val"]),
                "val": n * PER_CLASS["test"],
                "test": n * PER_CLASS["test"],
            }
        return {role: n * k for role, k in PER_CLASS.items()}


# ------------------------------------------------------------------ image-folder datasets with a split JSON


def folder_dataset(
    folder: str,
    image_subdir: str,
    split_name: str,
    classes: list[tuple[str, str]],
    path_of: Callable,
    raw: Callable[[str, list[Image_]], None] | None = None,
    extra: Callable[[str], None] | None = None,
) -> Callable[[str], None]:
    def build(root: str) -> None:
        ddir = osp.join(root, folder)
        images = images_for(classes, path_of)
        write_images(ddir, images)
        write_json(osp.join(ddir, split_name), split_json(images, image_subdir))
        if raw:
            raw(ddir, images)
        if extra:
            extra(ddir)

    return build


CALTECH = [("Faces", "face"), ("Leopards", "leopard"), ("accordion", "accordion"), ("airplanes", "airplane")]


def caltech_extra(ddir: str) -> None:
    for ignored in ("BACKGROUND_Google", "Faces_easy"):
        write_image(osp.join(ddir, "101_ObjectCategories", ignored, "image_0001.jpg"))


PETS = [
    ("Abyssinian", "abyssinian"),
    ("american_bulldog", "american_bulldog"),
    ("Bengal", "bengal"),
    ("great_pyrenees", "great_pyrenees"),
]


def pets_raw(ddir: str, images: list[Image_]) -> None:
    def line(im):
        return f"{osp.splitext(osp.basename(im.path))[0]} {im.label + 1} {1 + im.label % 2} {im.label + 1}"

    write_text(osp.join(ddir, "annotations", "trainval.txt"), [line(im) for im in images if im.role != "test"])
    write_text(osp.join(ddir, "annotations", "test.txt"), [line(im) for im in images if im.role == "test"])


CARS_META = [
    "AM General Hummer SUV 2000",
    "Acura RL Sedan 2012",
    "Tesla Model S Sedan 2012",
    "smart fortwo Convertible 2012",
]
CARS = [(str(i), " ".join([name.split()[-1]] + name.split()[:-1])) for i, name in enumerate(CARS_META)]


def cars_raw(ddir: str, images: list[Image_]) -> None:
    from scipy.io import savemat

    def annotations(selected):
        table = np.zeros((1, len(selected)), dtype=[("bbox_x1", "O"), ("class", "O"), ("fname", "O")])
        for j, im in enumerate(selected):
            table[0, j] = (
                np.array([[1]]),
                np.array([[im.label + 1]], dtype=np.uint8),
                np.array([osp.basename(im.path)]),
            )
        return table

    meta = np.empty((1, len(CARS_META)), dtype=object)
    for j, name in enumerate(CARS_META):
        meta[0, j] = np.array([name])
    os.makedirs(osp.join(ddir, "devkit"), exist_ok=True)
    savemat(osp.join(ddir, "devkit", "cars_meta.mat"), {"class_names": meta})
    savemat(
        osp.join(ddir, "devkit", "cars_train_annos.mat"),
        {"annotations": annotations([im for im in images if im.role != "test"])},
    )
    savemat(
        osp.join(ddir, "cars_test_annos_withlabels.mat"),
        {"annotations": annotations([im for im in images if im.role == "test"])},
    )


FLOWERS = [("1", "pink primrose"), ("2", "hard-leaved pocket orchid"), ("3", "canterbury bells"), ("4", "sweet pea")]


def flowers_raw(ddir: str, images: list[Image_]) -> None:
    from scipy.io import savemat

    ordered = sorted(images, key=lambda im: im.path)
    savemat(osp.join(ddir, "imagelabels.mat"), {"labels": np.array([[im.label + 1 for im in ordered]], dtype=np.uint8)})
    write_json(osp.join(ddir, "cat_to_name.json"), {folder: name for folder, name in FLOWERS})


SUN = [("a/abbey", "abbey"), ("b/bakery/shop", "shop bakery"), ("c/campus", "campus"), ("s/shoe_shop", "shoe_shop")]


def sun_raw(ddir: str, images: list[Image_]) -> None:
    write_text(osp.join(ddir, "ClassName.txt"), [f"/{folder}" for folder, _ in SUN])
    prefix = "SUN397"
    write_text(
        osp.join(ddir, "Training_01.txt"), ["/" + osp.relpath(im.path, prefix) for im in images if im.role != "test"]
    )
    write_text(
        osp.join(ddir, "Testing_01.txt"), ["/" + osp.relpath(im.path, prefix) for im in images if im.role == "test"]
    )


EUROSAT = [
    ("AnnualCrop", "Annual Crop Land"),
    ("Forest", "Forest"),
    ("HerbaceousVegetation", "Herbaceous Vegetation Land"),
    ("SeaLake", "Sea or Lake"),
]

UCF = [
    ("ApplyEyeMakeup", "Apply_Eye_Makeup"),
    ("Archery", "Archery"),
    ("BlowDryHair", "Blow_Dry_Hair"),
    ("YoYo", "Yo_Yo"),
]


def ucf_path(label, folder, i, role):
    return f"UCF-101-midframes/{dict(UCF)[folder]}/v_{folder}_g{i + 1:02d}_c01.jpg"


def ucf_raw(ddir: str, images: list[Image_]) -> None:
    lists = osp.join(ddir, "ucfTrainTestlist")
    write_text(osp.join(lists, "classInd.txt"), [f"{i + 1} {action}" for i, (action, _) in enumerate(UCF)])

    def clip(im):
        action = UCF[im.label][0]
        return f"{action}/{osp.splitext(osp.basename(im.path))[0]}.avi"

    write_text(osp.join(lists, "trainlist01.txt"), [f"{clip(im)} {im.label + 1}" for im in images if im.role != "test"])
    write_text(osp.join(lists, "testlist01.txt"), [clip(im) for im in images if im.role == "test"])


CLEVR = [("10", "10"), ("3", "3"), ("4", "4"), ("5", "5")]


def clevr_path(label, folder, i, role):
    split = "val" if role == "test" else "train"
    return f"images/{split}/CLEVR_{split}_{label * 100 + i:06d}.png"


def clevr_raw(ddir: str, images: list[Image_]) -> None:
    for split in ("train", "val"):
        scenes = [
            {"image_filename": osp.basename(im.path), "objects": [{"shape": "cube"}] * int(im.classname)}
            for im in images
            if im.path.startswith(f"images/{split}/")
        ]
        write_json(osp.join(ddir, "scenes", f"CLEVR_{split}_scenes.json"), {"info": {}, "scenes": scenes})


# ------------------------------------------------------------------ datasets without a split JSON


def fgvc_build(root: str) -> None:
    ddir = osp.join(root, "fgvc_aircraft")
    variants = ["707-320", "727-200", "A300B4", "Boeing 717"]
    images = images_for(
        [(v, v) for v in variants], lambda label, folder, i, role: f"images/{1000000 + label * 100 + i}.jpg"
    )
    write_images(ddir, images)
    write_text(osp.join(ddir, "variants.txt"), variants)
    for role in PER_CLASS:
        write_text(
            osp.join(ddir, f"images_variant_{role}.txt"),
            [f"{osp.splitext(osp.basename(im.path))[0]} {im.classname}" for im in images if im.role == role],
        )


IMAGENET = [
    ("n01440764", "tench"),
    ("n01443537", "goldfish"),
    ("n01484850", "great white shark"),
    ("n01491361", "tiger shark"),
]


def imagenet_build(root: str) -> None:
    ddir = osp.join(root, "imagenet")
    for label, (wnid, _) in enumerate(IMAGENET):
        for i in range(PER_CLASS["train"] + PER_CLASS["val"]):
            write_image(osp.join(ddir, "images", "train", wnid, f"{wnid}_{i}.JPEG"), seed=label * 50 + i)
        for i in range(PER_CLASS["test"]):
            write_image(osp.join(ddir, "images", "val", wnid, f"ILSVRC2012_val_{label * 10 + i:08d}.JPEG"), seed=i)
    write_text(
        osp.join(ddir, "classnames.txt"), [f"{wnid} {name}" for wnid, name in IMAGENET] + ["n01494475 hammerhead shark"]
    )


# ------------------------------------------------------------------ digit-folder datasets

DIGITS = ["0", "1", "2", "3"]


def digit_build(folder: str, split_name: str | None) -> Callable[[str], None]:
    """``folder/{train,test}/<d>/<n>.jpg``; train/ holds train + val, listed in the split file relative to train/."""

    def path_of(label, digit, i, role):
        split = "test" if role == "test" else "train"
        return f"{split}/{digit}/{label * 100 + i + 1:05d}.jpg"

    def build(root: str) -> None:
        ddir = osp.join(root, folder)
        images = images_for([(d, d) for d in DIGITS], path_of)
        write_images(ddir, images)
        if split_name:
            split = split_json([im for im in images if im.role != "test"], "train", roles=("train", "val"))
            write_json(osp.join(ddir, split_name), split)

    return build


def colour_biased_build(root: str, train_rho: float = 0.8, test_rho: float = 0.2, randomize: bool = True) -> None:
    ddir = osp.join(root, "colour_biased_mnist")
    splits = (("train", train_rho, PER_CLASS["train"] + PER_CLASS["val"]), ("test", test_rho, PER_CLASS["test"]))
    for split, rho, n in splits:
        for label in range(len(DIGITS)):
            for k in range(n):
                write_image(
                    osp.join(
                        ddir, f"images_rho={rho}_ncl=9_rand={randomize}", split, str(label), f"{label * 100 + k}.png"
                    ),
                    seed=k,
                )


MINIS = [
    Mini(
        "Caltech101",
        "caltech101",
        "caltech-101",
        [n for _, n in CALTECH],
        folder_dataset(
            "caltech-101",
            "101_ObjectCategories",
            "split_zhou_Caltech101.json",
            CALTECH,
            lambda label, folder, i, role: f"101_ObjectCategories/{folder}/image_{i + 1:04d}.jpg",
            extra=caltech_extra,
        ),
        "split_zhou_Caltech101.json",
        "split_Caltech101.json",
        [n for _, n in CALTECH],
    ),
    Mini(
        "OxfordPets",
        "oxford_pets",
        "oxford_pets",
        [n for _, n in PETS],
        folder_dataset(
            "oxford_pets",
            "images",
            "split_zhou_OxfordPets.json",
            PETS,
            lambda label, folder, i, role: f"images/{folder}_{i + 1}.jpg",
            raw=pets_raw,
        ),
        "split_zhou_OxfordPets.json",
        "split_OxfordPets.json",
        [n for _, n in PETS],
    ),
    Mini(
        "StanfordCars",
        "stanford_cars",
        "stanford_cars",
        [n for _, n in CARS],
        folder_dataset(
            "stanford_cars",
            "",
            "split_zhou_StanfordCars.json",
            CARS,
            lambda label, folder, i, role: (
                f"cars_{'test' if role == 'test' else 'train'}/{label * 100 + i + 1:05d}.jpg"
            ),
            raw=cars_raw,
        ),
        "split_zhou_StanfordCars.json",
        "split_StanfordCars.json",
        [
            "2000 AM General Hummer SUV",
            "2012 Acura RL Sedan",
            "2012 Tesla Model S Sedan",
            "2012 smart fortwo Convertible",
        ],
    ),
    Mini(
        "OxfordFlowers",
        "oxford_flowers",
        "oxford_flowers",
        [n for _, n in FLOWERS],
        folder_dataset(
            "oxford_flowers",
            "jpg",
            "split_zhou_OxfordFlowers.json",
            FLOWERS,
            lambda label, folder, i, role: f"jpg/image_{label * 13 + i + 1:05d}.jpg",
            raw=flowers_raw,
        ),
        "split_zhou_OxfordFlowers.json",
        "split_OxfordFlowers.json",
        [n for _, n in FLOWERS],
    ),
    Mini(
        "Food101",
        "food101",
        "food-101",
        ["apple_pie", "baby_back_ribs", "baklava", "beef_carpaccio"],
        folder_dataset(
            "food-101",
            "images",
            "split_zhou_Food101.json",
            [(n, n) for n in ("apple_pie", "baby_back_ribs", "baklava", "beef_carpaccio")],
            lambda label, folder, i, role: f"images/{folder}/{100000 + i}.jpg",
        ),
        "split_zhou_Food101.json",
        "split_Food101.json",
        ["apple_pie", "baby_back_ribs", "baklava", "beef_carpaccio"],
    ),
    Mini("FGVCAircraft", "fgvc_aircraft", "fgvc_aircraft", ["707-320", "727-200", "A300B4", "Boeing 717"], fgvc_build),
    Mini(
        "SUN397",
        "sun397",
        "sun397",
        [n for _, n in SUN],
        folder_dataset(
            "sun397",
            "SUN397",
            "split_zhou_SUN397.json",
            SUN,
            lambda label, folder, i, role: f"SUN397/{folder}/sun_{label}{i:04d}.jpg",
            raw=sun_raw,
        ),
        "split_zhou_SUN397.json",
        "split_SUN397.json",
        [n for _, n in SUN],
    ),
    Mini(
        "DescribableTextures",
        "dtd",
        "dtd",
        ["banded", "blotchy", "braided", "bubbly"],
        folder_dataset(
            "dtd",
            "images",
            "split_zhou_DescribableTextures.json",
            [(n, n) for n in ("banded", "blotchy", "braided", "bubbly")],
            lambda label, folder, i, role: f"images/{folder}/{folder}_{i:04d}.jpg",
        ),
        "split_zhou_DescribableTextures.json",
        "split_DescribableTextures.json",
        ["banded", "blotchy", "braided", "bubbly"],
    ),
    Mini(
        "EuroSAT",
        "eurosat",
        "eurosat",
        [n for _, n in EUROSAT],
        folder_dataset(
            "eurosat",
            "2750",
            "split_zhou_EuroSAT.json",
            EUROSAT,
            lambda label, folder, i, role: f"2750/{folder}/{folder}_{i + 1}.jpg",
        ),
        "split_zhou_EuroSAT.json",
        "split_EuroSAT.json",
        [n for _, n in EUROSAT],
    ),
    Mini(
        "UCF101",
        "ucf101",
        "ucf101",
        [n for _, n in UCF],
        folder_dataset("ucf101", "UCF-101-midframes", "split_zhou_UCF101.json", UCF, ucf_path, raw=ucf_raw),
        "split_zhou_UCF101.json",
        "split_UCF101.json",
        [n for _, n in UCF],
    ),
    Mini("ImageNet", "imagenet", "imagenet", [n for _, n in IMAGENET], imagenet_build, val_is_test=True),
    Mini(
        "SVHN",
        "svhn",
        "svhn",
        DIGITS,
        digit_build("svhn", "split_mlai_SVHN.json"),
        "split_mlai_SVHN.json",
        "split_SVHN.json",
        DIGITS,
    ),
    Mini(
        "Resisc45",
        "resisc45",
        "resisc45",
        ["airplane", "airport", "baseball_diamond", "basketball_court"],
        folder_dataset(
            "resisc45",
            "NWPU-RESISC45",
            "split_mlai_Resisc45.json",
            [(n, n) for n in ("airplane", "airport", "baseball_diamond", "basketball_court")],
            lambda label, folder, i, role: f"NWPU-RESISC45/{folder}/{folder}_{i + 1:03d}.jpg",
        ),
        "split_mlai_Resisc45.json",
        "split_Resisc45.json",
        ["airplane", "airport", "baseball_diamond", "basketball_court"],
    ),
    Mini(
        "CLEVR",
        "clevr",
        "CLEVR_v1.0",
        ["10", "3", "4", "5"],
        folder_dataset("CLEVR_v1.0", "images", "split_mlai_CLEVR.json", CLEVR, clevr_path, raw=clevr_raw),
        "split_mlai_CLEVR.json",
        "split_CLEVR.json",
        ["10", "3", "4", "5"],
    ),
    Mini(
        "LocMNIST",
        "locmnist",
        "locmnist_r1_f4",
        DIGITS,
        digit_build("locmnist_r1_f4", "split_LocMNIST.json"),
        "split_LocMNIST.json",
        "split_LocMNIST.json",
        DIGITS,
    ),
    Mini(
        "ColourBiasedMNIST", "colour_biased_mnist", "colour_biased_mnist", DIGITS, colour_biased_build, val_is_test=True
    ),
]
MINI = {m.name: m for m in MINIS}


def build_complete_paper_layouts(root: str) -> None:
    """Every miniature plus the other paper settings of the synthetic sets (read from the catalog), as
    ``prepare --all`` expects: each missing generated folder gets ``PER_CLASS`` train images per digit."""
    for mini in MINIS:
        mini.make(root)
    for info, setting in synthetic_settings():
        layout = info.layout_for(str(root), config_with(setting.opts))
        ddir = osp.join(str(root), layout.folder)
        for need in layout.required:
            if need.problem(ddir):
                for label, digit in enumerate(DIGITS):
                    for k in range(PER_CLASS["train"]):
                        write_image(osp.join(ddir, need.path, digit, f"{label * 100 + k}.png"), seed=k)


# ------------------------------------------------------------------ building datasets from a root


def make_cfg(root, name, shots=-1, seed=1, subsample="all", opts=()):
    """A config with the plugin keys for dataset ``name`` under ``root``."""
    cfg = get_cfg_default()
    extend_cfg(cfg)
    cfg.DATASET.ROOT = str(root)
    cfg.DATASET.NAME = name
    cfg.DATASET.NUM_SHOTS = shots
    cfg.DATASET.SUBSAMPLE_CLASSES = subsample
    cfg.SEED = seed
    cfg.merge_from_list([str(o) for o in opts])
    return cfg


def build(root, name, **kwargs):
    """The registered dataset ``name`` built from ``root`` (plugins must be loaded)."""
    return build_dataset(make_cfg(root, name, **kwargs))
