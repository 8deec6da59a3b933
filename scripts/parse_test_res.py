"""Average a metric over the seed folders of an experiment, with CoOp's ``parse_test_res.py`` flags and output.

    python scripts/parse_test_res.py output/svhn/BLACKVIP/.../a0.4_g0.2_sa0.01_sc0.005_eps1
    python scripts/parse_test_res.py output/svhn/BLACKVIP --multi-exp      # one experiment per subfolder
    python scripts/parse_test_res.py DIR --test-log                        # eval-only logs (no "Finish training")
    python scripts/parse_test_res.py DIR --ci95 --keyword macro_f1

Each subfolder of DIR is one run. Its ``results.json`` is read when present (full precision); otherwise its
``log.txt``, as CoOp does: only lines after the end signal count ("Finish training", or "=> result" with
``--test-log``), and the last ``* <keyword>: X%`` line wins. The spread is the population std (numpy's
default, as CoOp), or the 95% confidence interval 1.96 std / sqrt(n) with ``--ci95``.
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import re
import sys
from collections import OrderedDict, defaultdict
from pathlib import Path

import numpy as np

if __name__ == "__main__" and not __package__:  # run by path: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from trainers.results import RESULTS_FILE, ResultsError, RunResults  # noqa: E402

# The keywords the evaluator prints that results.json also holds (RunResults fields of the same name).
RESULTS_KEYWORDS = ("accuracy", "error", "macro_f1")


def subfolders(directory: str) -> list[str]:
    """Non-hidden subfolders, sorted by name (CoOp's order: seed1, seed10, seed2)."""
    return sorted(d for d in os.listdir(directory) if not d.startswith(".") and osp.isdir(osp.join(directory, d)))


def value_from_log(path: str, keyword: str, end_signal: str) -> float | None:
    """The last ``* keyword: X%`` after the end-signal line, or None."""
    pattern = re.compile(rf"\* {keyword}: ([\.\deE+-]+)%")
    started, value = False, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line == end_signal:
                started = True
            match = pattern.search(line)
            if started and match:
                value = float(match.group(1))
    return value


def value_from_results(path: str, keyword: str) -> float | None:
    """The keyword's number in results.json, or None when the file lacks it (or cannot be read: a warning)."""
    if keyword not in RESULTS_KEYWORDS:
        return None
    try:
        return getattr(RunResults.read(path), keyword)
    except ResultsError as e:
        print(f"Warning: {e}; reading log.txt instead", file=sys.stderr)
        return None


def read_run(run_dir: str, keyword: str, end_signal: str) -> tuple[str, float] | None:
    """(file read, value) for one run folder: results.json when it holds the keyword, else log.txt."""
    results, log = osp.join(run_dir, RESULTS_FILE), osp.join(run_dir, "log.txt")
    if osp.isfile(results):
        value = value_from_results(results, keyword)
        if value is not None:
            return results, value
    if osp.isfile(log):
        value = value_from_log(log, keyword, end_signal)
        return None if value is None else (log, value)
    print(f"Warning: no results.json or log.txt in {run_dir}", file=sys.stderr)
    return None


def spread(values: list[float], ci95: bool) -> float:
    std = float(np.std(values))
    return 1.96 * std / np.sqrt(len(values)) if ci95 else std


def parse_directory(directory: str, keyword: str, end_signal: str, ci95: bool) -> OrderedDict:
    """Print one line per run and the mean +- spread; return {keyword: mean}."""
    print(f"Parsing files in {directory}")
    found = []
    for sub in subfolders(directory):
        run = read_run(osp.join(directory, sub), keyword, end_signal)
        if run is not None:
            found.append(run)
    if not found:
        raise SystemExit(f"Nothing found in {directory}")
    for path, value in found:
        print(f"file: {path}. {keyword}: {value:.2f}%. ")
    values = [value for _, value in found]
    mean = float(np.mean(values))
    print("===")
    print(f"Summary of directory: {directory}")
    print(f"* {keyword}: {mean:.2f}% +- {spread(values, ci95):.2f}%")
    print("===")
    return OrderedDict([(keyword, mean)])


def main(argv: list[str] | None = None) -> OrderedDict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=str, help="folder of seed folders (or of experiments with --multi-exp)")
    parser.add_argument("--ci95", action="store_true", help="report the 95%% confidence interval instead of the std")
    parser.add_argument("--test-log", action="store_true", help='logs of eval-only runs: start at "=> result"')
    parser.add_argument("--multi-exp", action="store_true", help="each subfolder is an experiment of seed folders")
    parser.add_argument("--keyword", default="accuracy", type=str, help="metric: accuracy, error or macro_f1")
    args = parser.parse_args(argv)
    end_signal = "=> result" if args.test_log else "Finish training"

    if not args.multi_exp:
        return parse_directory(args.directory, args.keyword, end_signal, args.ci95)
    means = defaultdict(list)
    for sub in subfolders(args.directory):
        result = parse_directory(osp.join(args.directory, sub), args.keyword, end_signal, args.ci95)
        for key, value in result.items():
            means[key].append(value)
    print("Average performance")
    for key, values in means.items():
        print(f"* {key}: {np.mean(values):.2f}%")
    return OrderedDict((key, float(np.mean(values))) for key, values in means.items())


if __name__ == "__main__":
    main()
