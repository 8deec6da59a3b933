"""Stanford Cars: 196 car models, named year first ("2012 Tesla Model S Sedan")."""

import os.path as osp

from dassl.data.datasets import DATASET_REGISTRY

from .split_dataset import SplitDataset
from .splits import Record, created_split_rng, split_trainval


def year_first(name: str) -> str:
    """Move the trailing model year to the front: "Tesla Model S Sedan 2012" -> "2012 Tesla Model S Sedan"."""
    words = name.split(" ")
    return " ".join([words[-1]] + words[:-1])


@DATASET_REGISTRY.register()
class StanfordCars(SplitDataset):
    """``stanford_cars/cars_{train,test}/*.jpg``; split paths are relative to the dataset folder itself."""

    dataset_dir = "stanford_cars"
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
