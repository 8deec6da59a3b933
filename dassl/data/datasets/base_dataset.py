"""``Datum`` and ``DatasetBase``: the dataset-plugin API, with Dassl's attribute names so CoOp caches unpickle."""

from __future__ import annotations

import os.path as osp
import random
from collections import defaultdict
from collections.abc import Sequence


class Datum:
    """One labelled image: path, label, domain and class name.

    The private attribute names match Dassl's, so few-shot caches pickled by CoOp-family code
    (``dassl.data.datasets.base_dataset.Datum``) load here unchanged.
    """

    def __init__(self, impath: str = "", label: int = 0, domain: int = 0, classname: str = "") -> None:
        if not isinstance(impath, str):
            raise TypeError(f"Datum.impath must be a str, got {type(impath).__name__}")
        if not osp.isfile(impath):
            raise FileNotFoundError(f'Image listed in the split does not exist: "{impath}"')
        self._impath = impath
        self._label = label
        self._domain = domain
        self._classname = classname

    @property
    def impath(self) -> str:
        return self._impath

    @property
    def label(self) -> int:
        return self._label

    @property
    def domain(self) -> int:
        return self._domain

    @property
    def classname(self) -> str:
        return self._classname

    def __repr__(self) -> str:
        return (
            f"Datum(impath={self._impath!r}, label={self._label}, domain={self._domain}, classname={self._classname!r})"
        )


class DatasetBase:
    """A dataset as four lists of ``Datum``: labelled train, unlabelled train, val and test."""

    dataset_dir = ""
    domains: list[str] = []

    def __init__(self, train_x=None, train_u=None, val=None, test=None) -> None:
        self._train_x = train_x
        self._train_u = train_u
        self._val = val
        self._test = test
        self._num_classes = self.get_num_classes(train_x)
        self._lab2cname, self._classnames = self.get_lab2cname(train_x)

    @property
    def train_x(self):
        return self._train_x

    @property
    def train_u(self):
        return self._train_u

    @property
    def val(self):
        return self._val

    @property
    def test(self):
        return self._test

    @property
    def lab2cname(self) -> dict[int, str]:
        return self._lab2cname

    @property
    def classnames(self) -> list[str]:
        return self._classnames

    @property
    def num_classes(self) -> int:
        return self._num_classes

    @staticmethod
    def get_num_classes(data_source: Sequence[Datum]) -> int:
        """Largest label plus one (not the number of distinct labels), as in Dassl."""
        return max(item.label for item in data_source) + 1

    @staticmethod
    def get_lab2cname(data_source: Sequence[Datum]) -> tuple[dict[int, str], list[str]]:
        mapping = {item.label: item.classname for item in data_source}
        labels = sorted(mapping)
        return {lab: mapping[lab] for lab in labels}, [mapping[lab] for lab in labels]

    def check_input_domains(self, source_domains: Sequence[str], target_domains: Sequence[str]) -> None:
        if not source_domains or not target_domains:
            raise ValueError("Source and target domains must both be given")
        self.is_input_domain_valid(source_domains)
        self.is_input_domain_valid(target_domains)

    def is_input_domain_valid(self, input_domains: Sequence[str]) -> None:
        for domain in input_domains:
            if domain not in self.domains:
                raise ValueError(f"Input domain must belong to {self.domains}, but got [{domain}]")

    def generate_fewshot_dataset(self, *data_sources, num_shots: int = -1, repeat: bool = False):
        """Sample ``num_shots`` items per class from each source with Python's ``random``.

        Classes are visited in order of first appearance; a class with fewer items keeps all of
        them (or samples with replacement when ``repeat``), and a warning names those classes, since the
        run is then not the ``num_shots``-shot run its config says. Returns one list per source.
        """
        if num_shots < 1:
            return data_sources[0] if len(data_sources) == 1 else data_sources
        print(f"Creating a {num_shots}-shot dataset")
        output = []
        for data_source in data_sources:
            sampled = []
            groups = self.split_dataset_by_label(data_source)
            short = sorted(
                f"{items[0].classname} ({len(items)})" for items in groups.values() if len(items) < num_shots
            )
            if short and not repeat:
                print(
                    f"Warning: {len(short)} of {len(groups)} classes have fewer than {num_shots} items and keep all of "
                    f"them: {', '.join(short[:10])}{' ...' if len(short) > 10 else ''}"
                )
            for items in groups.values():
                if len(items) >= num_shots:
                    sampled.extend(random.sample(items, num_shots))
                else:
                    sampled.extend(random.choices(items, k=num_shots) if repeat else items)
            output.append(sampled)
        return output[0] if len(output) == 1 else output

    @staticmethod
    def split_dataset_by_label(data_source: Sequence[Datum]) -> dict[int, list[Datum]]:
        output: dict[int, list[Datum]] = defaultdict(list)
        for item in data_source:
            output[item.label].append(item)
        return output

    @staticmethod
    def split_dataset_by_domain(data_source: Sequence[Datum]) -> dict[int, list[Datum]]:
        output: dict[int, list[Datum]] = defaultdict(list)
        for item in data_source:
            output[item.domain].append(item)
        return output
