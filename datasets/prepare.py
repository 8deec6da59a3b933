"""Check dataset folders against the expected layout and say what is missing and where to get it.

Exit status 1 when anything is missing. The synthetic sets are checked in both settings the paper uses.

    python -m datasets.prepare NAME [--root DATA]
    python -m datasets.prepare --all [--root DATA]
"""

from __future__ import annotations

import argparse
import os
import os.path as osp

from .layouts import ALL_NAMES, CONFIG_FILE_NAMES, Layout, Need, paper_layouts


def resolve_name(name: str) -> str:
    """A registered dataset name from itself or its config file stem, ignoring case."""
    lookup = {n.lower(): n for n in ALL_NAMES}
    lookup.update({stem.lower(): n for stem, n in CONFIG_FILE_NAMES.items()})
    key = osp.splitext(osp.basename(name))[0].lower()
    if key not in lookup:
        raise ValueError(f'Unknown dataset "{name}". Known: {", ".join(ALL_NAMES)}')
    return lookup[key]


def report_need(need: Need, dataset_dir: str, shown: set[str], note: str = "") -> tuple[list[str], bool]:
    """Status lines for one piece and whether it is missing; a source already in ``shown`` is not repeated."""
    problem = need.problem(dataset_dir)
    if problem is None:
        return [f"  ok       {need.path}{note}"], False
    source = "see above" if need.source in shown else need.source
    shown.add(need.source)
    return [f"  {problem.upper():<8} {need.path}{note}", f"           get: {source}"], True


def check_layout(layout: Layout, root: str) -> tuple[list[str], int]:
    """Report lines for one dataset folder and the number of missing pieces."""
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
    lines.append(f"  => {'complete' if missing == 0 else f'{missing} missing'}")
    return lines, missing


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m datasets.prepare",
        description=__doc__.rsplit("\n\n", 1)[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", nargs="?", help=f"dataset name or config file stem ({', '.join(ALL_NAMES)})")
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = osp.abspath(osp.expanduser(args.root))
    try:
        names = ALL_NAMES if args.all else (resolve_name(args.name),)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    print(f"DATA = {root}\n")
    totals = {}
    for name in names:
        totals[name] = 0
        for layout in paper_layouts(name, root):
            lines, missing = check_layout(layout, root)
            print("\n".join(lines) + "\n")
            totals[name] += missing
    if len(names) > 1:
        for name, missing in totals.items():
            print(f"{name:<20} {'complete' if missing == 0 else f'{missing} missing'}")
    return 1 if any(totals.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
