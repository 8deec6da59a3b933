"""The dataset catalog: each dataset module registers itself once, and every dataset list is read from there."""

import json
import os.path as osp
import re
import sys
import textwrap
from pathlib import Path

import pytest

from dassl.config import get_cfg_default
from dassl.data.datasets import DATASET_REGISTRY
from datasets import prepare
from datasets.catalog import (
    DEFAULT_TEMPLATE,
    DatasetInfo,
    config_with,
    dataset_info,
    datasets,
    setting_of,
    synthetic_settings,
    template_for,
    transfer_datasets,
)
from datasets.layouts import Layout
from datasets.oxford_pets import OxfordPets
from tests.helpers.dataset_layouts import build
from trainers.config import declared_keys, extend_cfg, forget_keys, validate_cfg
from trainers.plugins import load_plugins
from trainers.targets import DATASET_TEMPLATES

load_plugins()

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "datasets"
PAPER_TRANSFER = (
    "caltech101 oxford_pets stanford_cars oxford_flowers food101 fgvc_aircraft sun397 dtd svhn eurosat resisc45 "
    "clevr ucf101 imagenet"
).split()
PAPER_LABELS = "Caltech Pets Cars Flowers Food Aircraft SUN DTD SVHN EuroSAT Resisc CLEVR UCF ImageNet".split()
BUILTINS = [(name, cls) for name, cls in DATASET_REGISTRY.items() if cls.__module__.startswith("datasets.")]


def merged_dataset_config(path):
    cfg = extend_cfg(get_cfg_default())
    cfg.merge_from_file(str(path))
    return cfg


# ------------------------------------------------------------------ every built-in dataset registers itself


@pytest.mark.parametrize("name, cls", BUILTINS, ids=[name for name, _ in BUILTINS])
def test_every_builtin_dataset_has_an_info_whose_config_file_names_it(name, cls):
    info = vars(cls).get("info")
    assert isinstance(info, DatasetInfo) and info.name == name
    path = CONFIGS / f"{info.config}.yaml"
    assert path.is_file()
    assert merged_dataset_config(path).DATASET.NAME == name
    assert "{}" in info.template and info.label and info.group in ("transfer", "synthetic")


@pytest.mark.parametrize("name, cls", BUILTINS, ids=[name for name, _ in BUILTINS])
def test_every_builtin_dataset_registers_the_files_it_expects(name, cls, tmp_path):
    layouts = cls.info.paper_layouts(str(tmp_path))
    assert layouts and all(layout.name == name and layout.required for layout in layouts)
    assert len(layouts) == max(1, len(cls.info.settings))


def test_every_dataset_config_file_belongs_to_a_registered_dataset():
    stems = {info.config for info in datasets()}
    assert {path.stem for path in CONFIGS.glob("*.yaml")} == stems
    assert len(BUILTINS) == len(datasets()) == 16


def test_transfer_datasets_are_the_papers_14_columns_in_order():
    infos = transfer_datasets()
    assert [info.config for info in infos] == PAPER_TRANSFER
    assert [info.label for info in infos] == PAPER_LABELS


def test_datasets_lists_the_transfer_columns_then_the_synthetic_ones():
    assert [info.config for info in datasets()] == PAPER_TRANSFER + ["colour_biased_mnist", "locmnist"]


def test_synthetic_settings_are_the_papers_four_with_their_overrides():
    pairs = synthetic_settings()
    assert [(info.name, s.name, s.label) for info, s in pairs] == [
        ("ColourBiasedMNIST", "colour_biased_mnist_easy", "Biased MNIST ρ=0.8"),
        ("ColourBiasedMNIST", "colour_biased_mnist_hard", "Biased MNIST ρ=0.9"),
        ("LocMNIST", "locmnist_r1_f1", "Loc-MNIST 1:1"),
        ("LocMNIST", "locmnist_r1_f4", "Loc-MNIST 1:4"),
    ]
    rho, size = "DATASET.COLOUR_BIASED_MNIST", "DATASET.LOCMNIST"
    assert [s.opts for _, s in pairs] == [
        ((f"{rho}.TRAIN_RHO", 0.8), (f"{rho}.TEST_RHO", 0.2)),
        ((f"{rho}.TRAIN_RHO", 0.9), (f"{rho}.TEST_RHO", 0.1)),
        ((f"{size}.R_SIZE", 1), (f"{size}.F_SIZE", 1)),
        ((f"{size}.R_SIZE", 1), (f"{size}.F_SIZE", 4)),
    ]


def test_synthetic_paper_layouts_follow_their_settings(tmp_path):
    assert [layout.folder for layout in dataset_info("LocMNIST").paper_layouts(str(tmp_path))] == [
        "locmnist_r1_f1",
        "locmnist_r1_f4",
    ]
    required = [[n.path for n in layout.required] for layout in dataset_info("colour_biased_mnist").paper_layouts("R")]
    assert required == [
        ["images_rho=0.8_ncl=9_rand=True/train/", "images_rho=0.2_ncl=9_rand=True/test/"],
        ["images_rho=0.9_ncl=9_rand=True/train/", "images_rho=0.1_ncl=9_rand=True/test/"],
    ]


# ------------------------------------------------------------------ the column of a finished run


def results_config(opts):
    """A results.json-style config (plain JSON data) with ``opts`` applied."""
    return json.loads(json.dumps(config_with(opts)))


@pytest.mark.parametrize("info, setting", synthetic_settings(), ids=[s.name for _, s in synthetic_settings()])
def test_setting_of_round_trips_every_paper_setting(info, setting):
    assert setting_of(info.name, results_config(setting.opts)) == setting.name
    nested = {}
    for name, value in setting.opts:
        *groups, leaf = name.split(".")
        node = nested
        for group in groups:
            node = node.setdefault(group, {})
        node[leaf] = value
    assert setting_of(info.name, nested) == setting.name


def test_setting_of_names_other_settings_as_before():
    locmnist = {"DATASET": {"LOCMNIST": {"R_SIZE": 1, "F_SIZE": 2}}}
    assert setting_of("LocMNIST", locmnist) == "locmnist_r1_f2"
    biased = {"DATASET": {"COLOUR_BIASED_MNIST": {"TRAIN_RHO": 0.7, "TEST_RHO": 0.3}}}
    assert setting_of("ColourBiasedMNIST", biased) == "colour_biased_mnist_rho0.7_0.3"
    assert setting_of("ColourBiasedMNIST", {}) == "colour_biased_mnist_easy"
    assert setting_of("LocMNIST", {}) == "locmnist_r1_f4"


def test_setting_of_a_plain_dataset_is_its_config_stem_and_unknown_ones_their_lowercase_name():
    assert setting_of("EuroSAT", {"DATASET": {"NUM_SHOTS": 16}}) == "eurosat"
    assert setting_of("DescribableTextures", {}) == "dtd"
    assert setting_of("MyOwnData", {}) == "myowndata"


# ------------------------------------------------------------------ look-ups


def test_dataset_info_resolves_registered_names_and_config_stems_ignoring_case():
    assert dataset_info("EuroSAT") is dataset_info("eurosat") is dataset_info("EUROSAT")
    assert dataset_info("dtd").name == "DescribableTextures"
    with pytest.raises(ValueError, match=r"Unknown dataset \"cifar10\".*DescribableTextures \(dtd\)"):
        dataset_info("cifar10")


def test_template_for_reads_the_info_and_falls_back_with_a_warning():
    assert template_for("EuroSAT") == "a centered satellite photo of {}."
    assert DATASET_TEMPLATES["OxfordPets"] == "a photo of a {}, a type of pet."
    assert set(DATASET_TEMPLATES) == {info.name for info in datasets()}
    with pytest.warns(UserWarning, match="No prompt template"):
        assert template_for("MyOwnData") == DEFAULT_TEMPLATE == "a photo of a {}."


def test_dataset_info_rejects_an_unknown_group_and_a_template_without_a_slot():
    with pytest.raises(ValueError, match="group"):
        DatasetInfo("X", "x", "X", "a photo of a {}.", "benchmark")
    with pytest.raises(ValueError, match="template"):
        DatasetInfo("X", "x", "X", "a photo", "other")


# ------------------------------------------------------------------ config keys


def test_dataset_keys_are_declared_by_their_modules_with_the_reference_defaults():
    declared = {key.name: key for key in declared_keys("DATASET.")}
    expected = {
        "DATASET.SUBSAMPLE_CLASSES": "all",
        "DATASET.LOCMNIST.R_SIZE": 1,
        "DATASET.LOCMNIST.F_SIZE": 4,
        "DATASET.COLOUR_BIASED_MNIST.TRAIN_RHO": 0.8,
        "DATASET.COLOUR_BIASED_MNIST.TEST_RHO": 0.2,
        "DATASET.COLOUR_BIASED_MNIST.TRAIN_N_CONFUSING_LABELS": 9,
        "DATASET.COLOUR_BIASED_MNIST.TEST_N_CONFUSING_LABELS": 9,
        "DATASET.COLOUR_BIASED_MNIST.USE_TEST_AS_VAL": True,
        "DATASET.COLOUR_BIASED_MNIST.RANDOMIZE": True,
    }
    for name, default in expected.items():
        key = declared[name]
        assert key.default == default and type(key.default) is type(default) and key.help and not key.compat
    assert declared["DATASET.SUBSAMPLE_CLASSES"].allowed() == ("all", "base", "new")
    cfg = extend_cfg(get_cfg_default(), randomize=False)
    assert cfg.DATASET.LOCMNIST.F_SIZE == 4 and cfg.DATASET.COLOUR_BIASED_MNIST.RANDOMIZE is False
    cfg.DATASET.SUBSAMPLE_CLASSES = "half"
    with pytest.raises(ValueError, match="SUBSAMPLE_CLASSES"):
        validate_cfg(cfg, "DATASET.")


# ------------------------------------------------------------------ a dataset is one module


PLUGIN = '''
"""A user's dataset in its own module: drawn shapes, one folder per shape."""

from dassl.data.datasets import DATASET_REGISTRY
from datasets.catalog import DatasetInfo
from datasets.layouts import Layout, Need
from datasets.split_dataset import SplitDataset
from datasets.splits import created_split_rng, folder_split_records
from trainers.config import ConfigKey, declare_keys

KEYS = declare_keys("DATASET.TOY_SHAPES", ConfigKey("STROKE", 2, "line width of the drawings, in pixels"))


@DATASET_REGISTRY.register()
class ToyShapes(SplitDataset):
    info = DatasetInfo(
        name="ToyShapes",
        config="toy_shapes",
        label="Shapes",
        template="a drawing of a {}.",
        group="transfer",
        layout=Layout(
            "ToyShapes",
            "toy_shapes",
            (Need("images/", "draw them: images/<shape>/<n>.png"),),
            created_split="split_ToyShapes.json",
        ),
    )
    image_subdir = "images"

    def build_split(self):
        return folder_split_records(self.image_dir, rng=created_split_rng())
'''


@pytest.fixture
def toy_plugin(tmp_path, monkeypatch):
    """A dataset module and its yaml written outside the tree, named in BBVP_PLUGINS; unregistered afterwards."""
    module = tmp_path / "toy_shapes_plugin.py"
    module.write_text(textwrap.dedent(PLUGIN))
    config = tmp_path / "toy_shapes.yaml"
    config.write_text('DATASET:\n  NAME: "ToyShapes"\n')
    monkeypatch.setenv("BBVP_PLUGINS", str(module))
    try:
        yield config
    finally:
        DATASET_REGISTRY.unregister("ToyShapes")
        forget_keys(["DATASET.TOY_SHAPES.STROKE"])
        sys.modules.pop("bbvp_plugin_toy_shapes_plugin", None)


def write_shapes(root):
    from tests.helpers.dataset_layouts import write_image

    for shape in ("circle", "square"):
        for k in range(10):
            write_image(osp.join(root, "toy_shapes", "images", shape, f"{k}.png"), seed=k)


def test_a_dataset_module_and_its_yaml_are_all_a_new_dataset_needs(toy_plugin, tmp_path, capsys):
    info = datasets()[-1]
    assert info.name == "ToyShapes" and transfer_datasets()[-1] is info
    assert [i.config for i in transfer_datasets()[:-1]] == PAPER_TRANSFER
    assert dataset_info("ToyShapes") is dataset_info("toy_shapes") is info
    assert template_for("ToyShapes") == DATASET_TEMPLATES["ToyShapes"] == "a drawing of a {}."
    assert setting_of("ToyShapes", {}) == "toy_shapes"

    cfg = merged_dataset_config(toy_plugin)
    assert cfg.DATASET.NAME == "ToyShapes" and cfg.DATASET.TOY_SHAPES.STROKE == 2

    root = tmp_path / "data"
    assert prepare.main(["toy_shapes", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "ToyShapes" in out and "MISSING  images/" in out and "draw them" in out
    write_shapes(str(root))
    assert prepare.main(["ToyShapes", "--root", str(root)]) == 0
    assert "=> complete" in capsys.readouterr().out
    assert prepare.main(["--all", "--root", str(root)]) == 1
    assert re.search(r"ToyShapes +complete", capsys.readouterr().out)

    ds = build(root, "ToyShapes")
    assert ds.classnames == ["circle", "square"] and len(ds.train_x) == 10


def test_the_temporary_dataset_is_gone_afterwards():
    assert "ToyShapes" not in DATASET_REGISTRY and len(datasets()) == 16
    assert not declared_keys("DATASET.TOY_SHAPES")


def test_a_subclass_without_its_own_info_reads_its_parents_layout_but_is_not_listed(tmp_path):
    class RenamedPets(OxfordPets):
        pass

    DATASET_REGISTRY.register(RenamedPets)
    try:
        assert "RenamedPets" not in {info.name for info in datasets()}
        assert RenamedPets.get_layout(config_with([("DATASET.ROOT", str(tmp_path))])).folder == "oxford_pets"
    finally:
        DATASET_REGISTRY.unregister("RenamedPets")


def test_an_info_under_another_registered_name_is_an_error():
    class Mislabelled:
        info = DatasetInfo("Other", "other", "Other", "a photo of a {}.", "other", layout=Layout("Other", "o", ()))

    DATASET_REGISTRY.register(Mislabelled)
    try:
        with pytest.raises(ValueError, match="Mislabelled"):
            datasets()
    finally:
        DATASET_REGISTRY.unregister("Mislabelled")
