"""Adding a plugin of each kind is adding one module: a method, target, prompter and optimiser from a temporary file.

The module below is written to a temporary folder and named in BBVP_PLUGINS; no file of the project is
touched. Each plugin must then show up where users see it and run end to end through train.py.
"""

from __future__ import annotations

import textwrap

import pytest

import train
from dassl.data.datasets import DATASET_REGISTRY
from dassl.engine import TRAINER_REGISTRY
from tests.helpers.toy_data import make_coop_dataset
from tests.plugins import coop_style  # noqa: F401  (registers the ToyCoOp dataset)
from trainers.config import declared_keys, forget_keys
from trainers.methods import method_label, registered_methods
from trainers.plugins import ENV_VAR
from trainers.prompters import PROMPTER_REGISTRY
from trainers.targets import TARGET_REGISTRY
from trainers.zo import ZO_REGISTRY

PLUGIN = textwrap.dedent(
    '''
    """A user's method: a global colour shift (prompter) found by random search (optimiser) on a mean-colour model."""
    import torch

    from dassl.engine import TRAINER_REGISTRY
    from trainers.config import ConfigKey, declare_keys
    from trainers.methods import BlackBoxTrainer
    from trainers.methods.losses import cross_entropy
    from trainers.prompters import PROMPTER_REGISTRY, Prompter, prompter_names
    from trainers.targets import Target, common_target_args, register_target
    from trainers.zo import ZO_REGISTRY, ZOOptimizer, ZOStep, zo_names

    declare_keys(
        "TRAINER.SHIFTSEARCH",
        ConfigKey("METHOD", "colour_shift", "prompt design", choices=prompter_names),
        ConfigKey("OPT_TYPE", "random_search", "optimiser", choices=zo_names),
        ConfigKey("RADIUS", 0.1, "random-search step radius"),
        ConfigKey("SP_AVG", 3, "candidates per step"),
    )


    @PROMPTER_REGISTRY.register(name="colour_shift")
    class ColourShift(Prompter):
        def __init__(self):
            super().__init__()
            self.shift = torch.nn.Parameter(torch.zeros(3))

        def forward(self, x):
            return x + self.shift.view(1, 3, 1, 1)

        def prepare(self, x):
            return x

        def apply_many(self, ctx, W):
            W = self._check_many(W)
            return (ctx.unsqueeze(0) + W.view(-1, 1, 3, 1, 1)).flatten(0, 1)

        @classmethod
        def example(cls):
            return cls()

        @classmethod
        def from_cfg(cls, cfg, node):
            return cls()


    @ZO_REGISTRY.register(name="random_search")
    class RandomSearch(ZOOptimizer):
        def __init__(self, dim, radius=0.1, candidates=3, seed=0):
            super().__init__(dim, seed)
            self.radius, self.queries_per_step = radius, candidates + 1

        def step(self, w, oracle):
            w = self._as_vector(w)
            moves = torch.randn(self.queries_per_step - 1, self.dim, generator=self._generator) * self.radius
            points = torch.cat([w.unsqueeze(0), w + moves.to(w.device)])
            losses = self._ask(oracle, points)
            self.k += 1
            best = points[int(losses.argmin())]
            return ZOStep(w=best, losses=losses, grad=w - best, gain=self.radius, skipped=False)

        def state_dict(self):
            return {"k": self.k, "generator": self._generator.get_state()}

        def load_state_dict(self, state):
            self.k = state["k"]
            self._generator.set_state(state["generator"])

        @classmethod
        def example(cls, dim, seed=0):
            return cls(dim, radius=0.2, candidates=8, seed=seed)

        @classmethod
        def from_cfg(cls, node, dim, seed, total_steps):
            return cls(dim, radius=node.RADIUS, candidates=node.SP_AVG, seed=seed)


    @register_target("mean_colour")
    class MeanColour(Target):
        def __init__(self, classnames, **kwargs):
            super().__init__(classnames, **kwargs)
            self.input_size = 16
            self._w = torch.linspace(-1, 1, 3 * len(classnames)).view(len(classnames), 3)

        @classmethod
        def example(cls):
            return cls(["a", "b"])

        @classmethod
        def from_cfg(cls, cfg, classnames, device):
            return cls(classnames, **common_target_args(cfg, device))

        def describe(self):
            return f"mean-colour linear model, {self.num_classes} classes"

        def _logits(self, images):
            return images.mean(dim=(2, 3)) @ self._w.T.to(images.device)

        def _move(self, device):
            pass


    @TRAINER_REGISTRY.register()
    class SHIFTSEARCH(BlackBoxTrainer):
        label = "Shift search"
        script_family = "shiftsearch"
        checkpoint_name = "shift"

        def loss(self, logits, labels):
            return cross_entropy(logits, labels)
    '''
)


@pytest.fixture
def user_plugin(tmp_path, monkeypatch):
    path = tmp_path / "shift_search_plugin.py"
    path.write_text(PLUGIN)
    monkeypatch.setenv(ENV_VAR, str(path))
    yield path
    TRAINER_REGISTRY.unregister("SHIFTSEARCH")
    PROMPTER_REGISTRY.unregister("colour_shift")
    ZO_REGISTRY.unregister("random_search")
    TARGET_REGISTRY.unregister("mean_colour")
    forget_keys(k.name for k in declared_keys("TRAINER.SHIFTSEARCH"))


def test_a_plugin_module_adds_a_method_target_prompter_and_optimiser(user_plugin, tmp_path, capsys):
    make_coop_dataset(str(tmp_path / "data"), "toy_coop", "split_zhou_ToyCoOp.json", ["a", "b"], n_train=4, n_test=2)
    (tmp_path / "toy.yaml").write_text("DATASET:\n  NAME: ToyCoOp\n")
    with pytest.raises(SystemExit):
        train.parse_args(["--help"])
    help_text = capsys.readouterr().out
    assert "SHIFTSEARCH" in help_text and "ToyCoOp" in DATASET_REGISTRY
    with pytest.raises(SystemExit):
        train.parse_args(["--list-keys", "TRAINER.SHIFTSEARCH"])
    assert "TRAINER.SHIFTSEARCH.RADIUS = 0.1" in capsys.readouterr().out
    assert method_label("SHIFTSEARCH") == "Shift search"
    assert "shiftsearch" in [m.script_family for m in registered_methods()]

    out = tmp_path / "out"
    argv = [
        "--root",
        str(tmp_path / "data"),
        "--seed",
        "1",
        "--trainer",
        "SHIFTSEARCH",
        "--dataset-config-file",
        str(tmp_path / "toy.yaml"),
        "--output-dir",
        str(out),
        "TARGET.NAME",
        "mean_colour",
        "INPUT.SIZE",
        "(16,16)",
        "OPTIM.MAX_EPOCH",
        "2",
        "DATALOADER.NUM_WORKERS",
        "0",
        "DATALOADER.TRAIN_X.BATCH_SIZE",
        "4",
    ]
    results = train.main(train.parse_args(argv))
    assert results["trainer"] == "SHIFTSEARCH" and results["learnable_parameters"] == 3
    assert results["queries"]["train"] == {"images": 2 * 2 * 4 * 4, "calls": 2 * 2}
    assert (out / "shift" / "model.pth.tar-2").is_file()
    log = (out / "log.txt").read_text()
    assert "Target: mean-colour linear model, 2 classes" in log and "Learnable parameters: 3" in log

    from scripts import make_tables

    capsys.readouterr()
    assert make_tables.main([str(out.parent)]) == 0
    assert "Shift search" in capsys.readouterr().out
