"""Method recipes: what each reproduction script of a method family runs, as data (one yaml file per family).

``configs/paper/recipes/<family>.yaml`` describes the family's scripts (``scripts/<family>/<script>.sh``): the
registered trainer, the run folder and train.py overrides as templates, and per script its positional arguments,
the setting it runs on, its fixed values and how ``paper_row`` fills it from configs/paper/hparams.yaml.
Recipes of methods outside the tree are read from the folders or files named in ``BBVP_RECIPES``
(``os.pathsep``-separated); ``scripts/launch.py`` runs them. A template is a Python format string over the
script's argument names, its fixed values and ``shots``.
"""

from __future__ import annotations

import os
import os.path as osp
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPES = REPO_ROOT / "configs" / "paper" / "recipes"
ENV_VAR = "BBVP_RECIPES"

SCALAR_KINDS = ("dataset", "positive_int", "number")
VARIADIC_KINDS = ("settings", "paper_names")
KINDS_HELP = (
    "dataset (a configs/datasets name), positive_int, number, a list of allowed values, "
    "settings (any number of datasets or synthetic settings) or paper_names (paper_row's NAMEs)"
)
TEMPLATE_VALUES = ("shots",)


class RecipeError(ValueError):
    """A recipe file that is missing or malformed; the message names the file and the fix."""


@dataclass(frozen=True)
class Argument:
    """A positional argument: its name (upper-cased in usage and errors) and kind (``KINDS_HELP``)."""

    name: str
    kind: str | tuple[str, ...]

    @property
    def variadic(self) -> bool:
        return self.kind in VARIADIC_KINDS

    @property
    def usage(self) -> str:
        return f"[{self.name.upper()} ...]" if self.variadic else self.name.upper()


@dataclass(frozen=True)
class PaperSource:
    """Where ``paper_row`` finds a script's arguments in hparams.yaml: the rows it serves (a dotted path to a
    mapping or list of rows), the row fields that select this script, and per argument a dotted path into the
    row when it is not the argument's own name (``name`` is the row's key)."""

    rows: str
    match: dict[str, Any] = field(default_factory=dict)
    args: dict[str, str] = field(default_factory=dict)

    @property
    def group(self) -> str:
        return self.rows.split(".")[0]


@dataclass(frozen=True)
class Script:
    """One reproduction script of a family."""

    name: str
    help: str
    example: str
    args: tuple[Argument, ...]
    setting: str = ""
    fixed: dict[str, str] = field(default_factory=dict)
    paper: PaperSource | None = None

    @property
    def is_paper_row(self) -> bool:
        return any(a.kind == "paper_names" for a in self.args)


@dataclass(frozen=True)
class Recipe:
    """A method family: its trainer, run folder and overrides (templates), fixed seeds if any, and scripts (whose
    fixed values include the family's ``fixed`` block)."""

    family: str
    source: str
    trainer: str
    path: str
    opts: tuple[tuple[str, str], ...]
    scripts: dict[str, Script]
    eval_only: bool = False
    seeds: tuple[str, ...] = ()


def recipe_files() -> dict[str, Path]:
    """Family name -> recipe file: the built-in folder, then ``BBVP_RECIPES`` (folders of ``<family>.yaml``, or files)."""
    entries = [str(RECIPES)] + [e for e in os.environ.get(ENV_VAR, "").split(os.pathsep) if e.strip()]
    found: dict[str, Path] = {}
    for entry in entries:
        path = Path(entry).expanduser()
        if path.is_dir():
            files = sorted(path.glob("*.yaml"))
        elif path.is_file() and path.suffix == ".yaml":
            files = [path]
        else:
            raise RecipeError(f"{ENV_VAR} names {entry}, which is neither a folder nor a .yaml file")
        for file in files:
            if file.stem in found and found[file.stem].resolve() != file.resolve():
                raise RecipeError(
                    f"two recipes for family '{file.stem}': {found[file.stem]} and {file}; rename or remove one"
                )
            found[file.stem] = file
    return found


def load_recipe(family: str) -> Recipe:
    """The recipe of ``family``; RecipeError listing the known families when there is none."""
    files = recipe_files()
    if family not in files:
        raise RecipeError(
            f"no recipe for method family '{family}' (known: {', '.join(sorted(files))}); add "
            f"{RECIPES.relative_to(REPO_ROOT)}/{family}.yaml or name its folder in {ENV_VAR}"
        )
    path = files[family]
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise RecipeError(f"{path}: cannot read the recipe ({e})") from e
    try:
        return _recipe(family, str(path), data)
    except (TypeError, ValueError) as e:
        raise RecipeError(f"{path}: {e}") from e


def _mapping(data: Any, where: str) -> dict:
    if not isinstance(data, dict):
        raise TypeError(f"{where} must be a mapping, got {data!r}")
    return data


def _keys(data: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    _mapping(data, where)
    problems = []
    if missing := [k for k in required if k not in data]:
        problems.append(f"missing {', '.join(missing)}")
    if unknown := [str(k) for k in data if k not in required + optional]:
        problems.append(f"unknown {', '.join(unknown)}")
    if problems:
        raise ValueError(f"{where}: {'; '.join(problems)} (keys: {', '.join(required + optional)})")
    return data


def value_text(value: Any) -> str:
    """A fixed value as the scripts write it: floats with up to 10 significant digits (1.0 gives "1")."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def _argument(name: str, kind: Any, where: str) -> Argument:
    if isinstance(kind, list) and kind and all(isinstance(k, str) for k in kind):
        return Argument(name, tuple(kind))
    if kind in SCALAR_KINDS + VARIADIC_KINDS:
        return Argument(name, kind)
    raise ValueError(f"{where}: argument {name} has kind {kind!r}; kinds: {KINDS_HELP}")


def _script(name: str, data: Any, recipe: dict) -> Script:
    where = f"scripts.{name}"
    data = _keys(data, where, ("help", "example", "args"), ("setting", "fixed", "paper"))
    args = tuple(_argument(str(k), v, where) for k, v in _mapping(data["args"] or {}, f"{where}.args").items())
    if len(args) > 1 and any(a.variadic for a in args):
        raise ValueError(f"{where}: an argument of kind {'/'.join(VARIADIC_KINDS)} must be the script's only one")
    paper = None
    if "paper" in data:
        p = _keys(data["paper"], f"{where}.paper", ("rows",), ("match", "args"))
        paper = PaperSource(
            str(p["rows"]), dict(p.get("match") or {}), {str(k): str(v) for k, v in (p.get("args") or {}).items()}
        )
    script = Script(
        name=name,
        help=str(data["help"]).rstrip("\n"),
        example=str(data["example"]),
        args=args,
        setting=str(data.get("setting", "")),
        fixed={
            str(k): value_text(v)
            for k, v in {
                **_mapping(recipe.get("fixed") or {}, "fixed"),
                **_mapping(data.get("fixed") or {}, f"{where}.fixed"),
            }.items()
        },
        paper=paper,
    )
    if not script.is_paper_row:
        _check_templates(script, recipe)
    return script


def _check_templates(script: Script, recipe: dict) -> None:
    """Every template field is an argument, a fixed value or ``shots``; a run needs a setting and a ``cfg``."""
    names = {a.name for a in script.args} | set(script.fixed) | set(TEMPLATE_VALUES)
    if not script.setting:
        raise ValueError(f"scripts.{script.name}: missing setting (the dataset or synthetic setting it runs on)")
    if "cfg" not in names:
        raise ValueError(f"scripts.{script.name}: no cfg (configs/trainers/<trainer>/<cfg>.yaml) among args or fixed")
    templates = [script.setting, str(recipe["path"]), *map(str, (recipe.get("opts") or {}).values())]
    for template in templates:
        for _, field_name, _, _ in string.Formatter().parse(template):
            if field_name is not None and field_name not in names:
                raise ValueError(
                    f"scripts.{script.name}: template {template!r} names {{{field_name}}}, which is none of its "
                    f"arguments, fixed values or {', '.join(TEMPLATE_VALUES)}"
                )


def _recipe(family: str, source: str, data: Any) -> Recipe:
    data = _keys(data, "the recipe", ("trainer", "path", "scripts"), ("opts", "fixed", "eval_only", "seeds"))
    scripts = _mapping(data["scripts"], "scripts")
    if not scripts:
        raise ValueError("scripts is empty; describe at least one script")
    recipe = Recipe(
        family=family,
        source=source,
        trainer=str(data["trainer"]),
        path=str(data["path"]),
        opts=tuple((str(k), value_text(v)) for k, v in _mapping(data.get("opts") or {}, "opts").items()),
        scripts={str(name): _script(str(name), spec, data) for name, spec in scripts.items()},
        eval_only=bool(data.get("eval_only", False)),
        seeds=tuple(value_text(s) for s in data.get("seeds") or ()),
    )
    values = recipe.scripts.values()
    if any(s.is_paper_row for s in values) and not any(s.paper for s in values):
        raise ValueError("a paper_names script needs scripts with a `paper` entry (the hparams.yaml rows they serve)")
    return recipe


def script_command(family: str, script: str) -> str:
    """How users call a script: its ``scripts/<family>/<script>.sh`` entry point, else the launcher."""
    entry = REPO_ROOT / "scripts" / family / f"{script}.sh"
    if entry.is_file():
        return f"bash {osp.relpath(entry, REPO_ROOT)}"
    return f"python -m scripts.launch {family} {script}"
