"""Check dataset folders against the expected layout and say what is missing and where to get it.

Exit status 1 when anything is missing, or a generated folder lacks its manifest or was made with other parameters.
The synthetic sets are checked in every setting the paper uses.
Every dataset in the catalog is known here, including those of user plugins named in $BBVP_PLUGINS.

    python -m datasets.prepare NAME [--root DATA]
    python -m datasets.prepare --all [--root DATA]
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import sys

from trainers.plugins import load_plugins

from .catalog import DatasetInfo, dataset_info, datasets
from .layouts import Layout, Need


def resolve(name: str) -> DatasetInfo:
    """The dataset named by its registered name, config file stem or config file path, ignoring case."""
    return dataset_info(osp.splitext(osp.basename(name))[0])


def report_plugin_failures() -> None:
    """Warn about dataset modules that failed to import: their datasets are missing from the catalog."""
    for module, error in load_plugins().items():
        if module.startswith("datasets."):
            print(f"warning: {module} failed to import, its datasets are not checked: {error}", file=sys.stderr)


def report_need(need: Need, dataset_dir: str, shown: set[str], note: str = "") -> tuple[list[str], bool]:
    """Status lines for one piece and whether it is missing; a source already in ``shown`` is not repeated."""
    problem = need.problem(dataset_dir)
    if problem is None:
        return [f"  ok       {need.path}{note}"], False
    source = "see above" if need.source in shown else need.source
    shown.add(need.source)
    return [f"  {problem.upper():<8} {need.path}{note}", f"           get: {source}"], True


def check_layout(layout: Layout, root: str) -> tuple[list[str], int]:
    """Report lines for one dataset folder and the number of pieces that are missing or must be regenerated.

    A generated folder must hold a manifest naming the parameters the layout expects: one without (written before
    manifests, or by a generation that did not finish) or with other parameters is not ready.
    """
    dataset_dir = osp.join(root, layout.folder)
    lines = [f"{layout.name}  {dataset_dir}" + ("" if osp.isdir(dataset_dir) else "  (folder not found)")]
    missing = 0
    shown: set[str] = set()
    for need in layout.required:
        need_lines, is_missing = report_need(need, dataset_dir, shown)
        lines += need_lines
        missing += is_missing
    if layout.split:
        need_lines, is_missing = report_need(layout.split, dataset_dir, shown, "  (fixed split)")
        lines += need_lines
        missing += is_missing
        if is_missing:
            raw = ", ".join(n.path for n in layout.fallback) or "the images"
            lines.append(
                f"           without it, training builds a new split from {raw} and saves it as "
                f"{layout.created_split}; numbers on it are not comparable with published ones"
            )
            for need in layout.fallback:
                lines += report_need(need, dataset_dir, shown, "  (raw files for that new split)")[0]
    elif layout.created_split:
        lines.append(f"  note     {layout.created_split} (train/val split) is created on first use if absent")
    stale = 0
    for generated in layout.generated:
        problem = generated.problem(dataset_dir)
        if problem is not None:
            lines += [f"  {problem.kind.upper():<8} {generated.manifest_name()}", f"           {problem.message}"]
            stale += 1
    lines.append(f"  => {verdict(missing, stale)}")
    return lines, missing + stale


def verdict(missing: int, stale: int) -> str:
    """``complete``, or how many pieces are missing and how many generated folders must be regenerated."""
    if missing + stale == 0:
        return "complete"
    parts = [f"{missing} missing"] if missing else []
    parts += [f"{stale} to regenerate"] if stale else []
    return "not ready: " + ", ".join(parts)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m datasets.prepare",
        description=__doc__.rsplit("\n\n", 1)[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    names = ", ".join(info.name for info in datasets())
    parser.add_argument("name", nargs="?", help=f"dataset name or config file stem ({names})")
    parser.add_argument("--all", action="store_true", help="check every dataset")
    parser.add_argument(
        "--root",
        default=os.environ.get("DATA", "data"),
        help="data root, the folder given to train.py --root (default: $DATA, else ./data)",
    )
    args = parser.parse_args(argv)
    if bool(args.name) == args.all:
        parser.error("give one dataset NAME or --all")
    return args


def check_dataset(info: DatasetInfo, root: str) -> int:
    """Print the report of every paper setting of one dataset; returns the number of pieces not ready."""
    layouts = info.paper_layouts(root)
    if not layouts:
        print(f"{info.name}  (no layout registered in its DatasetInfo: nothing to check)\n")
    missing = 0
    for layout in layouts:
        lines, layout_missing = check_layout(layout, root)
        print("\n".join(lines) + "\n")
        missing += layout_missing
    return missing


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = osp.abspath(osp.expanduser(args.root))
    report_plugin_failures()
    try:
        infos = datasets() if args.all else [resolve(args.name)]
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    print(f"DATA = {root}\n")
    totals = {info.name: check_dataset(info, root) for info in infos}
    if len(infos) > 1:
        for name, missing in totals.items():
            print(f"{name:<20} {'complete' if missing == 0 else f'{missing} not ready'}")
    return 1 if any(totals.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
