"""EuroSAT (RGB): 10 land-cover classes with CoOp's descriptive names."""

from dassl.data.datasets import DATASET_REGISTRY

from .catalog import DatasetInfo
from .layouts import Layout, Need, coop_split
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

LAYOUT = Layout(
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
)


@DATASET_REGISTRY.register()
class EuroSAT(SplitDataset):
    """``eurosat/2750/<class>/``; CoOp's fixed split, or 50/20/30 per class."""

    info = DatasetInfo(
        name="EuroSAT",
        config="eurosat",
        label="EuroSAT",
        template="a centered satellite photo of {}.",
        group="transfer",
        layout=LAYOUT,
        paper_column=10,
    )
    image_subdir = "2750"

    def build_split(self):
        return folder_split_records(self.image_dir, new_cnames=NEW_CNAMES, rng=created_split_rng())
