"""One CLIP prompt template per dataset, keyed by ``DATASET.NAME`` (the reference's single-template setting)."""

import warnings

DEFAULT_TEMPLATE = "a photo of a {}."

DATASET_TEMPLATES: dict[str, str] = {
    "OxfordPets": "a photo of a {}, a type of pet.",
    "OxfordFlowers": "a photo of a {}, a type of flower.",
    "FGVCAircraft": "a photo of a {}, a type of aircraft.",
    "DescribableTextures": "{} texture.",
    "EuroSAT": "a centered satellite photo of {}.",
    "StanfordCars": "a photo of a {}.",
    "Food101": "a photo of {}, a type of food.",
    "SUN397": "a photo of a {}.",
    "Caltech101": "a photo of a {}.",
    "UCF101": "a photo of a person doing {}.",
    "ImageNet": "a photo of a {}.",
    "SVHN": "This is a photo of a {}",
    "Resisc45": "This is a photo of a {}",
    "CLEVR": "This is a photo of {} objects",
    "LocMNIST": "This is a photo of {}",
    "ColourBiasedMNIST": "This is a photo of {}",
}


def template_for(dataset_name: str) -> str:
    """The dataset's template; unknown names (a user's own dataset) get ``DEFAULT_TEMPLATE`` with a warning."""
    if dataset_name in DATASET_TEMPLATES:
        return DATASET_TEMPLATES[dataset_name]
    warnings.warn(f"No prompt template for dataset {dataset_name!r}; using {DEFAULT_TEMPLATE!r}", stacklevel=2)
    return DEFAULT_TEMPLATE


def build_prompts(template: str, classnames: list[str]) -> list[str]:
    """Fill the template with each class name, underscores read as spaces (as the reference does)."""
    return [template.format(name.replace("_", " ")) for name in classnames]
