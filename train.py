"""Train and evaluate a registered trainer on a registered dataset (CoOp/BlackVIP command line and merge order).

    python train.py --root DATA --seed 1 --trainer BLACKVIP \
        --dataset-config-file configs/datasets/svhn.yaml --config-file configs/trainers/BLACKVIP/vit_b16.yaml \
        --output-dir output/svhn/BLACKVIP/seed1 DATASET.NUM_SHOTS 16
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import difflib
import importlib.util
import os
import os.path as osp
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from trainers import __version__

if TYPE_CHECKING:
    from dassl.config import CfgNode
    from trainers.run_folder import RunFolder

# Heavy modules (torch, open_clip, the plugins) are imported where they are used, so ``--help`` answers at once.
PLUGIN_PACKAGES = {"TRAINER_REGISTRY": "trainers", "DATASET_REGISTRY": "datasets"}
"""The registries ``--help`` lists, and the built-in package whose modules register into each."""
PLUGINS_ENV_VAR = "BBVP_PLUGINS"
TRACEBACK_ENV_VAR = "BBVP_TRACEBACK"


class UnknownPluginError(ValueError):
    """The command names a trainer or dataset that no module registered."""


class ConfigFileNotFoundError(FileNotFoundError):
    """A ``--config-file`` or ``--dataset-config-file`` that does not exist."""


def load_plugins(extra: list[str] | None = None) -> dict[str, str]:
    """Import the built-in plugin modules and the user's (``trainers.plugins.load_plugins``)."""
    from trainers.plugins import load_plugins as load

    return load(extra)


def check_requested_plugins(cfg: CfgNode, failures: dict[str, str]) -> None:
    """Fail early when the requested trainer or dataset did not register, naming the broken modules if any, else
    the registered names."""
    from dassl.data.datasets import DATASET_REGISTRY
    from dassl.engine import TRAINER_REGISTRY

    for kind, name, registry in (
        ("trainer", cfg.TRAINER.NAME, TRAINER_REGISTRY),
        ("dataset", cfg.DATASET.NAME, DATASET_REGISTRY),
    ):
        if not name or name in registry:
            continue
        if failures:
            broken = "\n".join(f"  {m}: {err}" for m, err in failures.items())
            raise ImportError(
                f'The {kind} "{name}" is not registered, and these plugin modules failed to import:\n{broken}'
            )
        names = sorted(registry.registered_names(), key=str.lower)
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (do you mean [{close[0]}]?)" if close else ""
        raise UnknownPluginError(
            f'unknown {kind} "{name}"{hint}; registered {kind}s: {", ".join(names)}; '
            f"a {kind} of your own loads with --plugin MODULE_OR_FILE"
        )


def plugin_specs(argv: list[str] | None) -> list[str]:
    """The ``--plugin`` values in ``argv`` (read before the full parser, whose help lists what plugins register)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--plugin", action="append", default=[])
    return pre.parse_known_args(argv)[0].plugin


def static_names() -> dict[str, list[str]]:
    """The names the built-in plugin modules register, read from their source without importing them: every class
    decorated with ``@TRAINER_REGISTRY.register()`` or ``@DATASET_REGISTRY.register(name=...)`` (a test checks that
    this equals the registries after ``load_plugins``)."""
    names: dict[str, list[str]] = {registry: [] for registry in PLUGIN_PACKAGES}
    for registry, package in PLUGIN_PACKAGES.items():
        spec = importlib.util.find_spec(package)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            for path in sorted(Path(folder).rglob("*.py")):
                names[registry] += registered_in(path.read_text(encoding="utf-8"), registry)
    return {registry: sorted(found, key=str.lower) for registry, found in names.items()}


def registered_in(source: str, registry: str) -> list[str]:
    """Names of the classes in ``source`` decorated with ``@<registry>.register(...)``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        for decorator in node.decorator_list:
            if (
                isinstance(decorator, ast.Call)
                and isinstance(decorator.func, ast.Attribute)
                and decorator.func.attr == "register"
                and isinstance(decorator.func.value, ast.Name)
                and decorator.func.value.id == registry
            ):
                given = [k.value for k in decorator.keywords if k.arg == "name"] + decorator.args[:1]
                name = given[0].value if given and isinstance(given[0], ast.Constant) else node.name
                found.append(str(name))
    return found


def config_files() -> list[str]:
    """The shipped config files, relative to the folder that holds ``configs/`` (this checkout, else the current
    directory: an installed copy runs from a checkout's folder, as CoOp's commands do)."""
    for base in (Path(__file__).resolve().parent, Path.cwd()):
        if (base / "configs" / "trainers").is_dir():
            found = [*(base / "configs" / "datasets").glob("*.yaml"), *(base / "configs" / "trainers").glob("*/*.yaml")]
            return sorted(str(p.relative_to(base)) for p in found)
    return []


def listing(trainers: list[str], datasets: list[str]) -> str:
    """The ``--help`` epilog: trainers, datasets and config files, and where more is explained."""
    configs = config_files()
    dataset_configs = [osp.basename(c)[: -len(".yaml")] for c in configs if c.startswith("configs/datasets/")]
    trainer_configs: dict[str, list[str]] = {}
    for c in configs:
        if c.startswith("configs/trainers/"):
            _, _, trainer, name = c.split("/")
            trainer_configs.setdefault(trainer, []).append(name[: -len(".yaml")])
    lines = [
        f"registered trainers: {', '.join(trainers)}",
        f"registered datasets: {', '.join(datasets)}",
    ]
    if configs:
        lines.append(f"dataset configs (configs/datasets/NAME.yaml): {', '.join(dataset_configs)}")
        lines.append("trainer configs (configs/trainers/TRAINER/NAME.yaml):")
        lines += [f"  {trainer}: {', '.join(names)}" for trainer, names in sorted(trainer_configs.items())]
    lines += [
        "config keys with their meaning and allowed values: python train.py --list-keys [PREFIX]",
        f"errors such as an unknown trainer print one line and exit with 2; {TRACEBACK_ENV_VAR}=1 shows the traceback",
    ]
    return "\n".join(lines)


def registered_listing() -> str:
    """The ``--help`` epilog from the registries as they are now (after ``load_plugins``)."""
    from dassl.data.datasets import DATASET_REGISTRY
    from dassl.engine import TRAINER_REGISTRY

    return listing(
        sorted(TRAINER_REGISTRY.registered_names(), key=str.lower),
        sorted(DATASET_REGISTRY.registered_names(), key=str.lower),
    )


def help_listing(argv: list[str]) -> str:
    """The epilog for ``argv``: read from the plugin sources when only the built-in plugins are in play (no imports,
    so ``--help`` answers at once), else from the registries after loading every plugin."""
    specs = plugin_specs(argv)
    wants_help = bool({"-h", "--help"} & set(argv))
    if wants_help and not specs and not os.environ.get(PLUGINS_ENV_VAR, "").strip():
        names = static_names()
        return listing(names["TRAINER_REGISTRY"], names["DATASET_REGISTRY"])
    load_plugins(specs)
    return registered_listing()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        epilog=help_listing(argv),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        help="import a plugin module (a module name or a .py path) before building; repeatable "
        "(the BBVP_PLUGINS environment variable does the same)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--list-keys",
        nargs="?",
        const="",
        default=None,
        metavar="PREFIX",
        help="print every config key (or those starting with PREFIX) with its default and meaning, and exit",
    )
    parser.add_argument("--root", type=str, default="", help="path to the datasets folder")
    parser.add_argument("--output-dir", type=str, default="", help="output directory")
    parser.add_argument("--resume", type=str, default="", help="checkpoint directory to resume from")
    parser.add_argument("--seed", type=int, default=-1, help="seed (>= 0, 0 included) for a fixed run")
    parser.add_argument("--source-domains", type=str, nargs="+", help="source domains for DA/DG")
    parser.add_argument("--target-domains", type=str, nargs="+", help="target domains for DA/DG")
    parser.add_argument("--transforms", type=str, nargs="+", help="data augmentation methods")
    parser.add_argument("--config-file", type=str, default="", help="path to the trainer config file")
    parser.add_argument("--dataset-config-file", type=str, default="", help="path to the dataset config file")
    parser.add_argument("--trainer", type=str, default="", help="name of the trainer")
    parser.add_argument("--backbone", type=str, default="", help="name of the backbone (CLIP architecture)")
    parser.add_argument("--head", type=str, default="", help="name of the head")
    parser.add_argument("--eval-only", action="store_true", help="evaluation only")
    parser.add_argument("--model-dir", type=str, default="", help="load the model from this directory (eval-only)")
    parser.add_argument("--load-epoch", type=int, help="load the weights saved after this epoch (eval-only)")
    parser.add_argument("--no-train", action="store_true", help="build the trainer but do not train")
    parser.add_argument(
        "--start-over",
        action="store_true",
        help="the output folder holds another run: move it into OUTPUT_DIR/.replaced-<time>/ and start this one",
    )
    parser.add_argument(
        "--randomize",
        type=int,
        default=1,
        help="Colour-Biased MNIST: shuffle which digits get the biased colour (1) or not (0)",
    )
    parser.add_argument("--use_wandb", action="store_true", help="log per-step metrics and results to Weights & Biases")
    parser.add_argument("--wb_name", type=str, default="test", help="Weights & Biases project")
    parser.add_argument(
        "opts",
        default=None,
        nargs=argparse.REMAINDER,
        help="modify config options using the command line (KEY VALUE pairs)",
    )
    args = parser.parse_args(argv)
    if args.list_keys is not None:
        from trainers.config import describe_keys

        print(describe_keys(args.list_keys))
        raise SystemExit(0)
    return args


def reset_cfg(cfg: CfgNode, args: argparse.Namespace) -> None:
    """Apply the command-line flags that were given."""
    if args.root:
        cfg.DATASET.ROOT = args.root
    if args.output_dir:
        cfg.OUTPUT_DIR = args.output_dir
    if args.resume:
        cfg.RESUME = args.resume
    if args.seed >= 0:
        cfg.SEED = args.seed
    if args.source_domains:
        cfg.DATASET.SOURCE_DOMAINS = args.source_domains
    if args.target_domains:
        cfg.DATASET.TARGET_DOMAINS = args.target_domains
    if args.transforms:
        cfg.INPUT.TRANSFORMS = args.transforms
    if args.trainer:
        cfg.TRAINER.NAME = args.trainer
    if args.backbone:
        cfg.MODEL.BACKBONE.NAME = args.backbone
    if args.head:
        cfg.MODEL.HEAD.NAME = args.head


def setup_cfg(args: argparse.Namespace) -> CfgNode:
    """Defaults -> plugin keys -> dataset yaml -> trainer yaml -> flags -> KEY VALUE opts, then freeze."""
    from dassl.config import get_cfg_default
    from trainers.config import extend_cfg, validate_cfg

    cfg = get_cfg_default()
    extend_cfg(cfg, randomize=bool(args.randomize))
    for path, what in ((args.dataset_config_file, "dataset"), (args.config_file, "trainer")):
        if path:
            if not osp.isfile(path):
                raise ConfigFileNotFoundError(f'The {what} config file "{path}" does not exist.')
            cfg.merge_from_file(path)
    reset_cfg(cfg, args)
    cfg.merge_from_list(args.opts or [])
    validate_cfg(cfg)
    cfg.freeze()
    return cfg


def print_args(args: argparse.Namespace, cfg: CfgNode) -> None:
    print("***************")
    print("** Arguments **")
    print("***************")
    for key in sorted(args.__dict__):
        print(f"{key}: {args.__dict__[key]}")
    print("************")
    print("** Config **")
    print("************")
    print(cfg)


def collect_results(cfg: CfgNode, trainer, wall_time: float, eval_only: bool, run_digest: str = "") -> dict:
    """The contents of ``results.json``: metrics, queries, parameters, timing, identity and the full config."""
    metrics = trainer.test_results or {}
    results = {
        "trainer": cfg.TRAINER.NAME,
        "dataset": cfg.DATASET.NAME,
        "seed": cfg.SEED,
        "shots": cfg.DATASET.NUM_SHOTS,
        "backbone": cfg.MODEL.BACKBONE.NAME,
        "eval_only": eval_only,
        "accuracy": metrics.get("accuracy"),
        "error": metrics.get("error_rate"),
        "macro_f1": metrics.get("macro_f1"),
        "wall_time_s": round(wall_time, 3),
        "toolkit_version": __version__,
        "fingerprint": run_digest,
    }
    results.update(trainer.run_info())
    results["config"] = yaml_safe(cfg)
    return results


def yaml_safe(cfg: CfgNode) -> dict:
    """The config as plain dicts/lists (tuples become lists) for JSON."""

    def convert(node):
        if isinstance(node, dict):
            return {k: convert(v) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return [convert(v) for v in node]
        return node

    return convert(cfg)


def main(args: argparse.Namespace) -> dict:
    """Run one experiment; returns what was written to ``OUTPUT_DIR/results.json`` (``results-eval.json`` for an
    evaluation in a folder that holds a training run, whose record it never changes).

    Started by ``torchrun`` with several processes, every process builds the same trainer and takes the same steps;
    rank 0 alone claims the folder, logs and writes, the others keep quiet (their stdout goes nowhere)."""
    from dassl.engine import TrainingStopped
    from dassl.utils import close_logger, distributed, set_random_seed, setup_logger
    from trainers.run_folder import EVAL_RESULTS_FILE, RESULTS_FILE, RunFolder, fingerprint

    start = time.time()
    failures = load_plugins(args.plugin)
    cfg = setup_cfg(args)
    check_requested_plugins(cfg, failures)
    check_process_count(cfg)
    current = fingerprint(cfg)
    folder = RunFolder(cfg.OUTPUT_DIR)
    distributed.init_from_env(cfg.USE_CUDA)
    try:
        with contextlib.ExitStack() as held:

            def claim() -> tuple[bool, str, list[str]]:
                held.enter_context(folder.locked())
                return claim_folder(folder, cfg, current, args)

            separate_eval, banner, notes = distributed.writer_decides(claim)
            if distributed.is_writer():
                setup_logger(cfg.OUTPUT_DIR, append=not separate_eval, banner=banner)
            else:
                quiet = held.enter_context(open(os.devnull, "w"))
                held.enter_context(contextlib.redirect_stdout(quiet))
            for note in notes:
                print(note)
            if cfg.SEED >= 0:
                print(f"Setting fixed seed: {cfg.SEED}")
                set_random_seed(cfg.SEED)
            try:
                return run(args, cfg, failures, start, current, EVAL_RESULTS_FILE if separate_eval else RESULTS_FILE)
            except TrainingStopped as e:
                print(e)
                raise SystemExit(e.exit_code) from None
            finally:
                sys.stdout.flush()
                close_logger()
    finally:
        distributed.shutdown()


def check_process_count(cfg: CfgNode) -> None:
    """Refuse to run a trainer that cannot divide its work in more than one process (it would repeat it)."""
    from dassl.engine import TRAINER_REGISTRY
    from trainers.config import ConfigError

    processes = int(os.environ.get("WORLD_SIZE", "1"))
    name = cfg.TRAINER.NAME
    if processes > 1 and name in TRAINER_REGISTRY:
        if not getattr(TRAINER_REGISTRY.get(name), "splits_work_over_processes", False):
            raise ConfigError(
                f"{name} cannot split its work over {processes} processes: each would repeat the whole run. "
                f"torchrun --nproc_per_node N splits the perturbed points of the zeroth-order methods "
                f"(BLACKVIP, VPOUR, BAR); run {name} as one process (python train.py ...)."
            )


def claim_folder(
    folder: RunFolder, cfg: CfgNode, current: dict, args: argparse.Namespace
) -> tuple[bool, str, list[str]]:
    """Check (and record) that the locked output folder may take this run, before anything is written to it.

    Returns whether this is an evaluation beside a training run (its own results file), the log's attempt line,
    and notes for the log. RunFolderError when the folder (or ``RESUME``) holds another run.
    """
    from trainers.run_folder import RunFolder

    notes = []
    if cfg.RESUME:
        RunFolder(cfg.RESUME).check_identity(current)
    if args.start_over:
        moved = folder.start_over()
        if moved:
            notes.append(f"Moved the previous run in {cfg.OUTPUT_DIR} to {moved}")
    separate_eval = args.eval_only and folder.holds_training()
    if separate_eval:
        return True, "", notes
    if folder.check_identity(current):
        notes.append(
            f"The earlier attempts in {cfg.OUTPUT_DIR} had another configuration and stopped before their first "
            f"checkpoint; their log and record were moved to {folder.start_over()}"
        )
    attempt = folder.begin_attempt(current, "eval" if args.eval_only else "train")
    verb = "started" if attempt == 1 else "resumed"
    banner = f"===== attempt {attempt}: {verb} on {time.strftime('%Y-%m-%d %H:%M:%S')} (pid {os.getpid()}) ====="
    return False, banner, notes


def run(args: argparse.Namespace, cfg: CfgNode, failures: dict, start: float, current: dict, results_name: str) -> dict:
    """Build the trainer, train and/or evaluate, and write the results file (the logger is set up)."""
    import torch

    from dassl.engine import build_trainer
    from dassl.utils import collect_env_info, distributed, write_json
    from dassl.utils.scalars import WandbSink
    from trainers.run_folder import RESULTS_FILE, digest

    wandb = None
    if args.use_wandb and distributed.is_writer():
        try:
            import wandb
        except ImportError:
            raise SystemExit("--use_wandb needs the wandb package: pip install wandb") from None
        wandb.init(project=args.wb_name, name=cfg.OUTPUT_DIR, config=yaml_safe(cfg))
    if torch.cuda.is_available() and cfg.USE_CUDA:
        torch.backends.cudnn.benchmark = True
    print_args(args, cfg)
    print("Collecting env info ...")
    print("** System info **\n" + collect_env_info() + "\n")
    for module, error in failures.items():
        print(f"Warning: plugin module {module} failed to import ({error})")

    trainer = build_trainer(cfg)
    if wandb is not None:
        trainer.add_scalar_sink(WandbSink(wandb))
    trainer.attempt_start = start
    trainer.run_fingerprint = digest(current)
    if args.eval_only:
        model_dir = args.model_dir or (cfg.OUTPUT_DIR if trainer.get_model_names() else "")
        trainer.load_model(model_dir, epoch=args.load_epoch)
        trainer.test()
        wall = time.time() - start
    elif not args.no_train:
        trainer.train()
        wall = trainer.wall_seconds()
    else:
        return {}
    results = collect_results(cfg, trainer, wall, args.eval_only, digest(current))
    if not distributed.is_writer():
        return results
    write_json(results, osp.join(cfg.OUTPUT_DIR, results_name))
    if results_name != RESULTS_FILE:
        print(f"Evaluation written to {osp.join(cfg.OUTPUT_DIR, results_name)} (the training record is unchanged)")
    if wandb is not None:
        wandb.log({k: v for k, v in results.items() if isinstance(v, (int, float))})
        wandb.finish()
    return results


def exit_status(error: Exception) -> int | None:
    """The exit status of a known user error (2: the command names something that does not exist; 1: the run was
    refused), or None for a bug, whose traceback is shown."""
    from dassl.utils import CheckpointError
    from datasets.errors import DatasetNotReadyError
    from trainers.config import ConfigError
    from trainers.run_folder import RunFolderError
    from trainers.targets import BudgetExceeded
    from trainers.weights import WeightsNotFoundError

    if isinstance(error, (UnknownPluginError, ConfigFileNotFoundError, WeightsNotFoundError, DatasetNotReadyError)):
        return 2
    if isinstance(error, (RunFolderError, ConfigError, CheckpointError, BudgetExceeded)):
        return 1
    return None


def cli(argv: list[str] | None = None) -> int:
    """``bbvp-train`` and ``python train.py``: run, and report a known user error as one ``error:`` message with its
    exit status instead of a traceback (``BBVP_TRACEBACK=1`` shows it)."""
    try:
        main(parse_args(argv))
    except Exception as e:
        status = exit_status(e)
        if status is None or os.environ.get(TRACEBACK_ENV_VAR, "") not in ("", "0"):
            raise
        print(f"error: {e}", file=sys.stderr)
        return status
    return 0


if __name__ == "__main__":
    sys.exit(cli())
