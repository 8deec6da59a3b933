"""One CLIP prompt template per dataset, keyed by ``DATASET.NAME`` (the reference's single-template setting).

Each dataset registers its template in its ``DatasetInfo`` (``datasets.catalog``); this module reads them there.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from datasets.catalog import DEFAULT_TEMPLATE, datasets, template_for

__all__ = ["DATASET_TEMPLATES", "DEFAULT_TEMPLATE", "build_prompts", "template_for"]


class RegisteredTemplates(Mapping[str, str]):
    """Registered dataset name -> template, read from the catalog on each access (plugins may register later)."""

    def _templates(self) -> dict[str, str]:
        return {info.name: info.template for info in datasets()}

    def __getitem__(self, name: str) -> str:
        return self._templates()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._templates())

    def __len__(self) -> int:
        return len(self._templates())


DATASET_TEMPLATES: Mapping[str, str] = RegisteredTemplates()


def build_prompts(template: str, classnames: list[str]) -> list[str]:
    """Fill the template with each class name, underscores read as spaces (as the reference does)."""
    return [template.format(name.replace("_", " ")) for name in classnames]
