"""Run a method family's reproduction script from its recipe: check the arguments, name the run folder, call train.py.

    python -m scripts.launch FAMILY SCRIPT [ARG ...]      (what scripts/<family>/<script>.sh runs)

The recipe (``configs/paper/recipes/<family>.yaml``, or a folder in ``BBVP_RECIPES``; see scripts/recipes.py)
holds the script's positional arguments and what they become. One run per seed goes to
``OUTPUT/<setting>/<TRAINER>/<path><EXTRA suffix>/seed<S>``; a run whose folder holds results.json is skipped, one
with a checkpoint resumes (train.py continues from it). ``paper_row`` scripts run the family's other scripts with
the paper's values from configs/paper/hparams.yaml. Bad arguments exit with 2 and the usage; a failing train.py
stops the script with its exit status.
"""

from __future__ import annotations

import math
import os
import os.path as osp
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if __name__ == "__main__" and not __package__:  # run by path: import scripts.* from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from scripts.recipes import (  # noqa: E402
    REPO_ROOT,
    Argument,
    PaperSource,
    Recipe,
    RecipeError,
    Script,
    load_recipe,
    recipe_files,
    script_command,
    value_text,
)
from scripts.runners import LauncherError, Run, Runner, build_runner, describe_settings, say  # noqa: E402
from trainers.results import RESULTS_FILE  # noqa: E402

if TYPE_CHECKING:
    from datasets.catalog import Setting

HPARAMS = REPO_ROOT / "configs" / "paper" / "hparams.yaml"
DATASET_CONFIGS = REPO_ROOT / "configs" / "datasets"
ENVIRONMENT_HELP = f"""Environment (optional):
  DATA=DIR  OUTPUT=DIR  unset: data/ and output/ in the repository ({REPO_ROOT}); a relative value is
                       taken against the current directory
  SEEDS="1 2 3"  SHOTS=16  PYTHON=python  CKPT_FREQ=500 (checkpoint every N epochs, for resuming)
  EXTRA="KEY VALUE ..."  more config overrides (values without spaces); the output folder gets a suffix _x<hash>
  PRESET=NAME  apply configs/presets/<TRAINER>/NAME.yaml after the script's settings (e.g. PRESET=efficient for
               BlackVIP: a tenth of the image queries); the output folder gets a suffix _NAME
  EPOCHS=N  replaces a fixed epoch count (synthetic_*, ablation_*, paper_row); the output path records it
  DRY_RUN=1  print the train.py commands (and skips) without running anything
  LAUNCHER=local|slurm  run here (default) or submit each run as a SLURM job (job arrays, requeued on preemption)
  JOBS=N  with LAUNCHER=local, N runs at once (one GPU each when GPUs exist; output in OUTPUT/.jobs/local/)
  SLURM settings (or the same keys in a YAML file named by LAUNCHER_CONFIG):
{describe_settings()}
A run whose folder holds results.json is skipped; one with a checkpoint but no results.json resumes.
python -m scripts.sweep_status OUTPUT lists the runs of a sweep: finished, queued, running, failed (with logs)."""
NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
COUNT = re.compile(r"[0-9]+")
SAFE_WORD = re.compile(r"[A-Za-z0-9_./:=+,@%-]+")


class UsageError(ValueError):
    """A bad argument or environment variable: the script prints it with its usage and exits with 2."""


# ---------------------------------------------------------------- the environment


def words(text: str) -> list[str]:
    """The words of the first line of ``text`` split at spaces and tabs (as bash ``read -r -a``)."""
    return [w for w in re.split(r"[ \t]+", text.split("\n", 1)[0]) if w]


def root_folder(environ: dict[str, str], name: str, default: str) -> str:
    """The folder named by the variable ``name``: unset or empty, ``default`` inside the repository (the scripts
    may be run from any folder, ``scripts/<family>/`` included, as the reference's README does); set, the value
    against the caller's directory."""
    value = environ.get(name)
    return absolute(value) if value else f"{REPO_ROOT}/{default}"


def absolute(path: str) -> str:
    """``path`` against the caller's directory (as given, ``./`` dropped), not normalised: the logged paths stay
    as the user wrote them."""
    if path.startswith("/"):
        return path
    cwd = os.getcwd()
    logical = os.environ.get("PWD", "")
    if logical and osp.isdir(logical) and osp.samefile(logical, cwd):
        cwd = logical
    return f"{cwd}/{path.removeprefix('./')}"


def positive_int(name: str, value: str) -> str:
    """``value`` without leading zeros, or a UsageError."""
    if not COUNT.fullmatch(value) or int(value) == 0:
        raise UsageError(f"{name} must be a positive integer, got '{value}'")
    return str(int(value))


def number(name: str, value: str) -> str:
    """``value`` in one spelling (up to 10 significant digits: 1.0 and 1 give "1"), so equal values share a folder."""
    if not NUMBER.fullmatch(value) or not math.isfinite(float(value)):
        raise UsageError(f"{name} must be a number, got '{value}'")
    return f"{float(value):.10g}"


def cksum(data: bytes) -> int:
    """POSIX ``cksum`` (CRC-32, polynomial 0x04C11DB7, length appended): the same on every machine."""
    crc = 0
    length = len(data)
    tail = bytearray()
    while length:
        tail.append(length & 0xFF)
        length >>= 8
    for byte in data + bytes(tail):
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return ~crc & 0xFFFFFFFF


@dataclass(frozen=True)
class Environment:
    """The scripts' environment variables, checked and resolved."""

    data: str
    output: str
    seeds: tuple[str, ...]
    shots: str
    ckpt_freq: str
    dry_run: bool
    epochs: str | None
    python: tuple[str, ...]
    extra: tuple[str, ...]
    runner: Runner
    preset: str = ""

    @classmethod
    def from_environ(cls, environ: dict[str, str]) -> Environment:
        """Read DATA, OUTPUT, SEEDS, SHOTS, CKPT_FREQ, DRY_RUN, EPOCHS, PYTHON, EXTRA and PRESET; UsageError when bad."""
        seeds_text = environ.get("SEEDS") or "1 2 3"
        shots = positive_int("SHOTS", environ.get("SHOTS") or "16")
        ckpt_freq = environ.get("CKPT_FREQ") or "500"
        dry_run = environ.get("DRY_RUN") or "0"
        if not seeds_text.replace(" ", ""):
            raise UsageError("SEEDS is empty")
        seeds = tuple(seeds_text.split())
        for seed in seeds:
            if not COUNT.fullmatch(seed):
                raise UsageError(f"SEEDS must hold non-negative integers, got '{seed}'")
        if not COUNT.fullmatch(ckpt_freq):
            raise UsageError(f"CKPT_FREQ must be a non-negative integer, got '{ckpt_freq}'")
        if dry_run not in ("0", "1"):
            raise UsageError(f"DRY_RUN must be 0 or 1, got '{dry_run}'")
        epochs = positive_int("EPOCHS", environ["EPOCHS"]) if environ.get("EPOCHS") else None
        extra = words(environ.get("EXTRA", ""))
        if len(extra) % 2:
            raise UsageError(f"EXTRA must hold KEY VALUE pairs, got '{environ.get('EXTRA', '')}'")
        preset = environ.get("PRESET", "")
        if preset and not re.fullmatch(r"[a-z0-9_]+", preset):
            raise UsageError(f"PRESET must be a preset name such as 'efficient', got '{preset}'")
        output = root_folder(environ, "OUTPUT", "output")
        try:
            runner = build_runner(environ, osp.abspath(output), dry_run == "1")
        except LauncherError as e:
            raise UsageError(str(e)) from None
        return cls(
            data=root_folder(environ, "DATA", "data"),
            output=output,
            seeds=seeds,
            shots=shots,
            ckpt_freq=ckpt_freq,
            dry_run=dry_run == "1",
            epochs=epochs,
            python=tuple(words(environ.get("PYTHON") or "python")),
            extra=tuple(extra),
            runner=runner,
            preset=preset,
        )

    @property
    def suffix(self) -> str:
        """``_NAME`` for a PRESET, then ``_x`` and 8 hex digits of the POSIX checksum of EXTRA (empty without them)."""
        preset = f"_{self.preset}" if self.preset else ""
        return preset + (f"_x{cksum(os.fsencode(' '.join(self.extra))):08x}" if self.extra else "")

    def preset_opts(self, trainer: str) -> list[str]:
        """The KEY VALUE overrides of PRESET for ``trainer`` (none without PRESET); UsageError naming the presets that
        exist when it has none of that name."""
        if not self.preset:
            return []
        folder = REPO_ROOT / "configs" / "presets" / trainer
        path = folder / f"{self.preset}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
            raise UsageError(
                f"no preset '{self.preset}' for {trainer} (looked for {path.relative_to(REPO_ROOT)}; "
                f"presets for {trainer}: {' '.join(known) or 'none'})"
            )
        return preset_overrides(path)


def preset_overrides(path: Path) -> list[str]:
    """A preset yaml flattened to train.py's KEY VALUE overrides (lists written as ``[a,b]``, without spaces)."""
    import yaml

    def flatten(node: dict, prefix: str) -> list[str]:
        out: list[str] = []
        for key, value in node.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                out += flatten(value, name + ".")
            elif isinstance(value, list):
                out += [name, "[" + ",".join(str(v) for v in value) + "]"]
            else:
                out += [name, str(value)]
        return out

    with open(path) as f:
        return flatten(yaml.safe_load(f) or {}, "")


# ---------------------------------------------------------------- datasets and settings


def known_datasets() -> list[str]:
    return sorted(p.stem for p in DATASET_CONFIGS.glob("*.yaml"))


def dataset_arg(name: str) -> str:
    """``name`` if configs/datasets/<name>.yaml exists, else a UsageError listing the known names."""
    if not re.fullmatch(r"[a-z0-9_]+", name) or not (DATASET_CONFIGS / f"{name}.yaml").is_file():
        raise UsageError(f"unknown dataset '{name}' (known: {' '.join(known_datasets())})")
    return name


def _numbered(setting: Setting, name: str) -> tuple[tuple[str, Any], ...] | None:
    """The overrides of ``setting`` with the integers ``name`` spells where the setting's name spells its integer
    values (``locmnist_r1_f7`` from ``locmnist_r1_f4``), or None when ``name`` is not such a variant."""
    pattern, rest, keys = "", setting.name, []
    for key, value in setting.opts:
        if isinstance(value, bool) or not isinstance(value, int):
            continue
        found = re.search(rf"(?<![0-9]){value}(?![0-9])", rest)
        if found is None:
            return None
        pattern += re.escape(rest[: found.start()]) + "([1-9][0-9]*)"
        rest, keys = rest[found.end() :], [*keys, key]
    match = re.fullmatch(pattern + re.escape(rest), name) if keys else None
    if match is None:
        return None
    numbers = dict(zip(keys, map(int, match.groups())))
    return tuple((key, numbers.get(key, value)) for key, value in setting.opts)


def resolve_setting(name: str) -> tuple[str, tuple[str, ...]]:
    """(dataset config stem, data overrides) of a configs/datasets name or of a synthetic setting of the catalog
    (or a numbered variant of one, e.g. ``locmnist_r1_f7``); UsageError when it is neither."""
    if re.fullmatch(r"[a-z0-9_]+", name) and (DATASET_CONFIGS / f"{name}.yaml").is_file():
        return name, ()
    from datasets.catalog import datasets  # imports every plugin: only when a name is not a dataset config

    for info in datasets():
        for setting in info.settings:
            opts = setting.opts if setting.name == name else _numbered(setting, name)
            if opts is not None:
                return info.config, tuple(text for key, value in opts for text in (key, value_text(value)))
    raise UsageError(f"unknown dataset '{name}' (known: {' '.join(known_datasets())})")


def expand_settings(names: list[str]) -> list[str]:
    """Datasets and settings to run: a dataset with paper settings means all of them; default: the transfer
    benchmarks, then the synthetic settings."""
    from datasets.catalog import datasets, synthetic_settings, transfer_datasets

    if not names:
        return [info.config for info in transfer_datasets()] + [setting.name for _, setting in synthetic_settings()]
    with_settings = {info.config: [s.name for s in info.settings] for info in datasets() if info.settings}
    out = []
    for name in names:
        if name in with_settings:
            out += with_settings[name]
        else:
            resolve_setting(name)
            out.append(name)
    return out


# ---------------------------------------------------------------- one script


def usage(recipe: Recipe, script: Script) -> str:
    command = script_command(recipe.family, script.name)
    args = " ".join(a.usage for a in script.args)
    return f"Usage: {command} {args}\n{script.help}\nExample: {command} {script.example}\n\n{ENVIRONMENT_HELP}"


def bind(script: Script, argv: list[str]) -> dict[str, str] | list[str]:
    """The script's argument values in canonical spelling (the values of a variadic argument as a list)."""
    if script.args and script.args[-1].variadic:
        return list(argv)
    if len(argv) != len(script.args):
        raise UsageError(f"expected {len(script.args)} arguments, got {len(argv)}")
    return {a.name: parse(a, value) for a, value in zip(script.args, argv)}


def parse(arg: Argument, value: str) -> str:
    name = arg.name.upper()
    if isinstance(arg.kind, tuple):
        if value not in arg.kind:
            allowed = ", ".join(arg.kind[:-1]) + f" or {arg.kind[-1]}" if len(arg.kind) > 1 else arg.kind[0]
            raise UsageError(f"{name} must be {allowed}, got '{value}'")
        return value
    if arg.kind == "dataset":
        return dataset_arg(value)
    if arg.kind == "positive_int":
        return positive_int(name, value)
    return number(name, value)


def shell_quote(args: list[str]) -> str:
    """The command as one line a shell reads back into the same words."""
    return " ".join(a if SAFE_WORD.fullmatch(a) else "'" + a.replace("'", "'\\''") + "'" for a in args)


def has_checkpoint(folder: str) -> bool:
    if not osp.isdir(folder):
        return False
    return any(osp.isfile(osp.join(folder, d, "checkpoint")) for d in os.listdir(folder) if not d.startswith("."))


def finished_by_another_command(folder: str, train_args: list[str]) -> str:
    """Why the finished run in ``folder`` is not what ``train.py train_args`` would produce ("" when it is, or when
    its results.json predates fingerprints)."""
    from train import parse_args, setup_cfg
    from trainers.results import ResultsError, RunResults
    from trainers.run_folder import digest, fingerprint

    try:
        recorded = RunResults.read(osp.join(folder, RESULTS_FILE)).fingerprint
    except ResultsError as e:
        return str(e)
    if not recorded:
        return ""
    here = os.getcwd()
    os.chdir(REPO_ROOT)  # config paths are relative to the repository, as for the train.py it runs
    try:
        expected = digest(fingerprint(setup_cfg(parse_args(train_args))))
    finally:
        os.chdir(here)
    return "" if recorded == expected else f"fingerprint {recorded}, this command's {expected}"


def run_seeds(recipe: Recipe, setting: str, values: dict[str, str], env: Environment, stdin: int | None) -> int:
    """One train.py run per seed of the setting; finished runs are skipped. Returns the first failing exit status."""
    stem, data_opts = resolve_setting(setting)
    run_dir = f"{env.output}/{setting}/{recipe.trainer}/{recipe.path.format(**values)}{env.suffix}"
    preset = env.preset_opts(recipe.trainer)
    replaced = set(preset[::2])
    opts = [text for key, template in recipe.opts if key not in replaced for text in (key, template.format(**values))]
    opts += preset
    if recipe.eval_only:
        tail = ["--eval-only", *data_opts, *opts]
    else:
        common = ["DATASET.NUM_SHOTS", env.shots, "DATASET.SUBSAMPLE_CLASSES", "all", "TRAIN.CHECKPOINT_FREQ"]
        tail = [*data_opts, *opts, *common, env.ckpt_freq]
    for seed in recipe.seeds or env.seeds:
        out = f"{run_dir}/seed{seed}"
        train_args = [
            "--root",
            env.data,
            "--seed",
            seed,
            "--trainer",
            recipe.trainer,
            "--dataset-config-file",
            f"configs/datasets/{stem}.yaml",
            "--config-file",
            f"configs/trainers/{recipe.trainer}/{values['cfg']}.yaml",
            "--output-dir",
            out,
            *tail,
            *env.extra,
        ]
        if osp.isfile(osp.join(out, RESULTS_FILE)):
            other = finished_by_another_command(out, train_args)
            if other:
                say(f"Stop: {out} holds a finished run of another command ({other}); move it away to run this one")
                return 2
            say(f"Skip: finished run in {out} (results.json exists)")
            continue
        queued = env.runner.already_queued(out)
        if queued:
            say(f"Skip: {out} is already queued or running as {queued}")
            continue
        if has_checkpoint(out):
            say(f"Resume: unfinished run in {out} (checkpoint found)")
        elif osp.isdir(out):
            say(f"Restart: unfinished run in {out} has no checkpoint yet, training from scratch")
        cmd = [*env.python, "train.py", *train_args]
        say(f"Run: {shell_quote(cmd)}")
        if not env.dry_run:
            code = env.runner.run(Run(osp.abspath(out), cmd), stdin=stdin)
            if code:
                return code
    return env.runner.flush()


def run_script(recipe: Recipe, script: Script, argv: list[str], env: Environment, stdin: int | None = None) -> int:
    """Run ``script`` with positional ``argv``; UsageError on a bad argument, else train.py's exit status."""
    if env.dry_run:
        say(f"# dry run: nothing is run; commands are relative to {REPO_ROOT}")
    if script.is_paper_row:
        return paper_row(recipe, argv, env)
    bound = bind(script, argv)
    if isinstance(bound, list):
        arg = script.args[-1].name
        runs = [{**script.fixed, "shots": env.shots, arg: name} for name in expand_settings(bound)]
    else:
        runs = [{**script.fixed, "shots": env.shots, **bound}]
    for values in runs:
        if env.epochs and "epoch" in script.fixed:
            values["epoch"] = env.epochs
        code = run_seeds(recipe, script.setting.format(**values), values, env, stdin)
        if code:
            return code
    return 0


# ---------------------------------------------------------------- paper_row


def lookup(namespace: dict, path: str) -> Any:
    node: Any = namespace
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


def paper_rows(hparams: dict, source: PaperSource) -> list[tuple[str | None, dict]]:
    """(key, row) of the rows a paper source names: a mapping's items, or a list's rows without a key."""
    rows = lookup(hparams, source.rows)
    return list(rows.items()) if isinstance(rows, dict) else [(None, row) for row in rows]


def paper_call(
    recipe: Recipe, hparams: dict, source: PaperSource, key: str | None, row: dict, env: Environment
) -> tuple[Script, list[str]]:
    """The script serving ``row`` and its arguments from the row (EPOCHS replaces an ``epoch`` argument)."""
    scripts = [
        s
        for s in recipe.scripts.values()
        if s.paper and s.paper.rows == source.rows and all(row.get(k) == v for k, v in s.paper.match.items())
    ]
    where = f"{HPARAMS.name} {source.rows}" + (f".{key}" if key else "")
    if len(scripts) != 1:
        raise RecipeError(f"{recipe.source}: {len(scripts)} scripts serve {where} (want exactly one); see paper.match")
    script = scripts[0]
    namespace = {**lookup(hparams, source.group), **row, **(row.get(recipe.family) or {}), "name": key}
    args = []
    for arg in script.args:
        if arg.name == "epoch" and env.epochs:
            args.append(env.epochs)
            continue
        path = script.paper.args.get(arg.name, arg.name)
        try:
            args.append(str(lookup(namespace, path)))
        except KeyError:
            raise RecipeError(
                f"{recipe.source}: {where} has no '{path}' for argument {arg.name} of {script.name}"
            ) from None
    return script, args


def paper_plan(recipe: Recipe, names: list[str], env: Environment) -> list[tuple[Script, list[str]]]:
    """The script calls for ``names`` (rows or groups of rows of hparams.yaml; default: the first group)."""
    hparams = yaml.safe_load(HPARAMS.read_text())
    sources = {s.paper.group: s.paper for s in recipe.scripts.values() if s.paper}
    named = {key: source for source in sources.values() for key, _ in paper_rows(hparams, source) if key is not None}
    calls = []
    for name in names or list(sources)[:1]:
        if name in sources:
            rows = paper_rows(hparams, sources[name])
            calls += [paper_call(recipe, hparams, sources[name], key, row, env) for key, row in rows]
        elif name in named:
            row = dict(paper_rows(hparams, named[name]))[name]
            calls.append(paper_call(recipe, hparams, named[name], name, row, env))
        else:
            keys = [" ".join(k for k, _ in paper_rows(hparams, s) if k is not None) for s in sources.values()]
            known = ", ".join([", ".join(sources), *[k for k in keys if k]])
            raise UsageError(f"unknown name '{name}' for {recipe.family}; known: {known}")
    return calls


def paper_row(recipe: Recipe, names: list[str], env: Environment) -> int:
    """Run the family's scripts with the paper's values; a failing call does not stop the others (exit 1)."""
    calls = paper_plan(recipe, names, env)
    say(f"Paper row ({recipe.family}): {len(calls)} script call(s)")
    failed = []
    for script, args in calls:
        line = " ".join([script_command(recipe.family, script.name), *args])
        say(f"== {line}")
        try:
            code = run_script(recipe, script, args, env, stdin=subprocess.DEVNULL)
        except UsageError as e:
            say(f"Error: {e}", "", usage(recipe, script), file=sys.stderr)
            code = 2
        if code:
            failed.append(f"  {line}")
    if failed:
        say("Failed:", *failed, file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------- command line


def launcher_usage() -> str:
    lines = ["Usage: python -m scripts.launch FAMILY SCRIPT [ARG ...]   (SCRIPT --help: its arguments)", "Families:"]
    for family in recipe_files():
        try:
            lines.append(f"  {family}: {' '.join(load_recipe(family).scripts)}")
        except RecipeError as e:
            lines.append(f"  {family}: broken recipe ({e})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if len(argv) < 2 or argv[0] in ("-h", "--help"):
            helped = bool(argv) and argv[0] in ("-h", "--help")
            say(launcher_usage(), file=sys.stdout if helped else sys.stderr)
            return 0 if helped else 2
        recipe = load_recipe(argv[0])
        if argv[1] not in recipe.scripts:
            raise RecipeError(f"{recipe.source} has no script '{argv[1]}' (scripts: {' '.join(recipe.scripts)})")
    except RecipeError as e:
        say(f"Error: {e}", file=sys.stderr)
        return 2
    script, args = recipe.scripts[argv[1]], argv[2:]
    if args[:1] in (["-h"], ["--help"]):
        say(usage(recipe, script))
        return 0
    try:
        env = Environment.from_environ(dict(os.environ))
        try:
            code = run_script(recipe, script, args, env)
        finally:
            finished = env.runner.finish()  # runs started before an error or Ctrl-C are waited for or stopped
        return code or finished
    except UsageError as e:
        say(f"Error: {e}", "", usage(recipe, script), file=sys.stderr)
        return 2
    except (RecipeError, LauncherError) as e:
        say(f"Error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
