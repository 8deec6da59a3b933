"""Aggregate the seed runs under an output folder into the BlackVIP paper's tables.

    python scripts/make_tables.py OUTPUT_ROOT [--format markdown|latex|csv] [--paper] [--variant REGEX ...]
                                              [--plot FILE.png] [--strict]

Every folder holding ``results.json`` (or a ``log.txt``, a ``run.json`` or a checkpoint) is one run; a
``results-eval.json`` (an --eval-only run in a training run's folder) is never read as its result, and an --eval-only
run of a trained method in a folder of its own is listed apart, never counted as a seed. Finished runs
are grouped by method (trainer, target: CLIP's backbone, a classifier or a remote model, BlackVIP coordinator) and column: the dataset for the transfer
table (one table per shot count, the paper's column order, with Avg and the Win count against zero-shot CLIP of
the same backbone) or the setting and shots for the synthetic table (Loc-MNIST fake-digit size, Biased-MNIST rho
pair).
A cell reads ``mean ± std (n)``: the std is the SAMPLE std over seeds (n-1 in the denominator; none for n = 1),
unlike CoOp's parse_test_res.py, which prints the population std. Zero-shot runs count for every shot count.

A cell whose runs come from several hyper-parameter folders is never averaged across them: the table shows one
folder, marks the cell with ``*`` and lists every folder after the tables. The folder shown is the one matching
``--variant REGEX`` (a path relative to OUTPUT_ROOT; repeatable), else the one with the most seeds, then the
newest. Runs without a result (unfinished, failed, or a log without results.json) and unreadable files (named,
with what to do) are listed at the end and left out of the tables; a cell whose folder holds such runs reads
``mean ± std (n/m)``, n of its m runs, and is listed too. ``--strict`` prints the same and exits with status 1
when any run has no result or any file is unreadable.
``--paper`` adds the paper's number and our difference beside each cell (configs/paper/results.yaml).
``--plot`` draws accuracy against the training image queries of each run folder (results.json
``queries.train.images``), one series per method.
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys
from pathlib import Path

if (
    __name__ == "__main__" and not __package__
):  # run by path: import this tool's modules as scripts.* from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from scripts.tables import RENDERERS, build_report, collect, load_paper, plot_queries  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="output root written by the scripts (e.g. ./output)")
    parser.add_argument("--format", choices=sorted(RENDERERS), default="markdown")
    parser.add_argument("--paper", action="store_true", help="add the paper's numbers and our differences")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="REGEX",
        help="in a cell with several hyper-parameter folders, show the one matching; repeatable",
    )
    parser.add_argument("--plot", metavar="FILE.png", help="plot accuracy against training image queries")
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 1 when any run has no result or a file is unreadable"
    )
    args = parser.parse_args(argv)
    if not osp.isdir(args.root):
        parser.error(f"{args.root} is not a folder")

    runs, unfinished = collect(args.root)
    report = build_report(runs, unfinished, load_paper() if args.paper else None, args.variant)
    if not report.tables and not report.notes:
        print(f"No runs found under {args.root}", file=sys.stderr)
        return 1
    print(RENDERERS[args.format](report), end="")
    if args.format == "csv":
        for title, lines in report.notes:
            print("\n".join([title + ":"] + lines), file=sys.stderr)
    if args.plot:
        plot_queries(runs, args.plot)
        print(f"Plot written to {args.plot}", file=sys.stderr)
    if args.strict and unfinished:
        unreadable = sum(u.unreadable for u in unfinished)
        print(
            f"--strict: {len(unfinished)} run(s) without a result ({unreadable} with an unreadable file), listed above",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
