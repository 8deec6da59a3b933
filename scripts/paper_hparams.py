"""Print the script calls that reproduce rows of the BlackVIP paper, from configs/paper/hparams.yaml.

One line per call, ``<script> <arg> ...``, relative to ``scripts/<family>/``; ``paper_row.sh`` runs them.

    python scripts/paper_hparams.py FAMILY [--epochs N] [NAME ...]

NAME: a transfer dataset (e.g. svhn), a synthetic setting (e.g. locmnist_r1_f1), or a group: ``transfer``
(the 14 benchmarks, the default), ``synthetic`` (the 4 settings), ``ablation`` (blackvip only: the 8
architecture rows). ``--epochs`` replaces the table's epoch count (the synthetic and ablation scripts read
the EPOCHS environment variable instead, which paper_row.sh passes on).
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys

import yaml

HPARAMS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), "configs", "paper", "hparams.yaml")

# Positional arguments of each family's scripts after the leading dataset / f_size / epoch arguments.
TRANSFER_ARGS = {
    "blackvip": ("moms", "gamma", "spsa_c", "p_eps"),
    "vpour": ("moms", "spsa_a", "spsa_c"),
    "bar": ("init_lr", "min_lr"),
    "vpwb": ("lr",),
}
SYNTHETIC_ARGS = {
    "blackvip": ("moms", "alpha", "spsa_a", "spsa_c"),
    "vpour": ("moms", "alpha", "spsa_a", "spsa_c"),
    "bar": ("init_lr", "min_lr"),
    "vpwb": ("lr",),
}
ABLATION_ARGS = ("target", "alpha", "moms", "gamma", "spsa_c")
ABLATION_SCRIPTS = {"vit-mae-base": "ablation_arch_vit.sh", "dino-resnet-50": "ablation_arch_rn.sh"}
FAMILIES = tuple(TRANSFER_ARGS)


def load_hparams(path: str = HPARAMS) -> dict:
    """The paper's hyper-parameter tables."""
    with open(path) as f:
        return yaml.safe_load(f)


def values(row: dict, names: tuple[str, ...]) -> list[str]:
    return [str(row[name]) for name in names]


def transfer_call(hp: dict, family: str, dataset: str, epochs: int | None) -> str:
    row = hp["transfer"]["datasets"][dataset]
    epoch = epochs or row["epochs"]["whitebox" if family == "vpwb" else "blackbox"]
    return " ".join(["tl_bench.sh", dataset, str(epoch), *values(row[family], TRANSFER_ARGS[family])])


def synthetic_call(hp: dict, family: str, setting: str) -> str:
    row = hp["synthetic"]["settings"][setting]
    leading = [str(row["data"]["f_size"])] if row["script"] == "lm" else []
    return " ".join([f"synthetic_{row['script']}.sh", *leading, *values(row[family], SYNTHETIC_ARGS[family])])


def ablation_calls(hp: dict) -> list[str]:
    p_eps = str(hp["ablation"]["fixed"]["p_eps"])
    return [
        " ".join([ABLATION_SCRIPTS[row["coordinator"]], *values(row, ABLATION_ARGS), p_eps])
        for row in hp["ablation"]["rows"]
    ]


def plan(hp: dict, family: str, names: list[str], epochs: int | None = None) -> list[str]:
    """Script calls for ``names`` (default: the transfer benchmarks); ValueError on an unknown name."""
    transfer, synthetic = list(hp["transfer"]["datasets"]), list(hp["synthetic"]["settings"])
    calls = []
    for name in names or ["transfer"]:
        if name in ("transfer", *transfer):
            calls += [transfer_call(hp, family, d, epochs) for d in (transfer if name == "transfer" else [name])]
        elif name in ("synthetic", *synthetic):
            calls += [synthetic_call(hp, family, s) for s in (synthetic if name == "synthetic" else [name])]
        elif name == "ablation" and family == "blackvip":
            calls += ablation_calls(hp)
        else:
            groups = "transfer, synthetic" + (", ablation" if family == "blackvip" else "")
            raise ValueError(
                f"unknown name '{name}' for {family}; known: {groups}, {' '.join(transfer)}, {' '.join(synthetic)}"
            )
    return calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("family", choices=FAMILIES)
    parser.add_argument("names", nargs="*", help="datasets, synthetic settings or groups (default: transfer)")
    parser.add_argument("--epochs", type=int, help="replace the table's epoch count")
    args = parser.parse_intermixed_args(argv)
    try:
        calls = plan(load_hparams(), args.family, args.names, args.epochs)
    except ValueError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    print("\n".join(calls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
