"""EuroSAT (RGB): 10 land-cover classes with CoOp's descriptive names."""

from dassl.data.datasets import DATASET_REGISTRY

from .split_dataset import SplitDataset
from .splits import created_split_rng, folder_split_records

NEW_CNAMES = {
    "AnnualCrop": "Annual Crop Land",
    "Forest": "Forest",
    "HerbaceousVegetation": "Herbaceous Vegetation Land",
    "Highway": "Highway or Road",
    "Industrial": "Industrial Buildings",
    "Pasture": "Pasture Land",
    "PermanentCrop": "Permanent Crop Land",
    "Residential": "Residential Buildings",
    "River": "River",
    "SeaLake": "Sea or Lake",
}


@DATASET_REGISTRY.register()
class EuroSAT(SplitDataset):
    """``eurosat/2750/<class>/``; CoOp's fixed split, or 50/20/30 per class."""

    dataset_dir = "eurosat"
    image_subdir = "2750"

    def build_split(self):
        return folder_split_records(self.image_dir, new_cnames=NEW_CNAMES, rng=created_split_rng())
