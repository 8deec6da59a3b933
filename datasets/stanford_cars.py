"""Stanford Cars: 196 car models, named year first ("2012 Tesla Model S Sedan")."""

import os.path as osp

from dassl.data.datasets import DATASET_REGISTRY

from .catalog import DatasetInfo
from .layouts import Layout, Need, coop_split
from .split_dataset import SplitDataset
from .splits import Record, created_split_rng, split_trainval

DEVKIT = "car_devkit.tgz (same source); it extracts to devkit/"
LAYOUT = Layout(
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
        Need("devkit/cars_train_annos.mat", DEVKIT),
        Need("devkit/cars_meta.mat", DEVKIT),
        Need("cars_test_annos_withlabels.mat", "see https://github.com/pytorch/vision/issues/7545 for a copy"),
    ),
    created_split="split_StanfordCars.json",
)


def year_first(name: str) -> str:
    """Move the trailing model year to the front: "Tesla Model S Sedan 2012" -> "2012 Tesla Model S Sedan"."""
    words = name.split(" ")
    return " ".join([words[-1]] + words[:-1])


@DATASET_REGISTRY.register()
class StanfordCars(SplitDataset):
    """``stanford_cars/cars_{train,test}/*.jpg``; split paths are relative to the dataset folder itself."""

    info = DatasetInfo(
        name="StanfordCars",
        config="stanford_cars",
        label="Cars",
        template="a photo of a {}.",
        group="transfer",
        layout=LAYOUT,
        paper_column=3,
    )
    image_subdir = ""

    def build_split(self):
        from scipy.io import loadmat

        meta = loadmat(osp.join(self.dataset_dir, "devkit", "cars_meta.mat"))["class_names"][0]
        classnames = [year_first(str(entry[0])) for entry in meta]
        trainval = self.read_annotations("cars_train", osp.join("devkit", "cars_train_annos.mat"), classnames)
        test = self.read_annotations("cars_test", "cars_test_annos_withlabels.mat", classnames)
        train, val = split_trainval(trainval, p_val=0.2, rng=created_split_rng())
        return train, val, test

    def read_annotations(self, image_folder: str, mat_file: str, classnames: list[str]) -> list[Record]:
        """Records from a devkit ``annotations`` struct array (``fname`` and 1-based ``class``)."""
        from scipy.io import loadmat

        annotations = loadmat(osp.join(self.dataset_dir, mat_file))["annotations"][0]
        records = []
        for entry in annotations:
            label = int(entry["class"][0, 0]) - 1
            records.append(
                Record(osp.join(self.dataset_dir, image_folder, str(entry["fname"][0])), label, classnames[label])
            )
        return records
