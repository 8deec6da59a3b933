"""Average a metric over the seed folders of an experiment, with CoOp's ``parse_test_res.py`` flags and output.

    python scripts/parse_test_res.py output/svhn/BLACKVIP/.../a0.4_g0.2_sa0.01_sc0.005_eps1
    python scripts/parse_test_res.py output/svhn/BLACKVIP --multi-exp      # one experiment per subfolder
    python scripts/parse_test_res.py DIR --test-log                        # eval-only logs (no "Finish training")
    python scripts/parse_test_res.py DIR --ci95 --keyword macro_f1
    python scripts/parse_test_res.py DIR --strict                          # exit 1 unless every run has a result

Each subfolder of DIR holding results.json, log.txt, run.json or a checkpoint is one run. Its ``results.json`` is
read when present (full precision); otherwise its ``log.txt``, as CoOp does: only lines after the end signal count
("Finish training", or "=> result" with ``--test-log``), and the last ``* <keyword>: X%`` line wins.
``results-eval.json`` (an --eval-only run in a training run's folder) is never read. The spread is the population
std (numpy's default, as CoOp), or the 95% confidence interval 1.96 std / sqrt(n) with ``--ci95``.

A run without a result (unfinished, failed, or an unreadable file) is listed before the summary, which then says
it covers N of M runs; the mean is over the runs with a result. ``--strict`` prints the same and exits with
status 1 when any run has no result.
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import re
import sys
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if __name__ == "__main__" and not __package__:  # run by path: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from trainers.results import LOG_FILE, RESULTS_FILE, ResultsError, RunFiles, RunResults  # noqa: E402

# The keywords the evaluator prints that results.json also holds (RunResults fields of the same name).
RESULTS_KEYWORDS = ("accuracy", "error", "macro_f1")


@dataclass(frozen=True)
class Found:
    """A run's value and the file it was read from."""

    file: str
    value: float


@dataclass(frozen=True)
class NoResult:
    """A run without a usable value: ``kind`` is "incomplete", "unreadable" or "no result"; ``why`` says what to do."""

    kind: str
    folder: str
    why: str

    def line(self) -> str:
        """One output line; an unreadable file's message names the file itself."""
        return f"{self.kind}: {self.why}" if self.kind == "unreadable" else f"{self.kind}: {self.folder}: {self.why}"


def subfolders(directory: str) -> list[str]:
    """Non-hidden subfolders, sorted by name (CoOp's order: seed1, seed10, seed2)."""
    return sorted(d for d in os.listdir(directory) if not d.startswith(".") and osp.isdir(osp.join(directory, d)))


def value_from_log(path: str, keyword: str, end_signal: str) -> float | None:
    """The last ``* keyword: X%`` after the end-signal line, or None; OSError when the file cannot be read."""
    pattern = re.compile(rf"\* {keyword}: ([\.\deE+-]+)%")
    started, value = False, None
    with open(path, errors="replace") as f:
        for line in f:
            line = line.strip()
            if line == end_signal:
                started = True
            match = pattern.search(line)
            if started and match:
                value = float(match.group(1))
    return value


def value_from_results(path: str, keyword: str) -> float | None:
    """The keyword's number in results.json, or None when the file lacks it; ResultsError naming an unreadable file."""
    if keyword not in RESULTS_KEYWORDS:
        return None
    return getattr(RunResults.read(path), keyword)


def read_run(run_dir: str, keyword: str, end_signal: str) -> Found | NoResult | None:
    """One run folder's value: from results.json when it holds the keyword, else from log.txt; why there is none;
    or None (with a warning) when the folder is not a run."""
    folder = RunFiles.scan(run_dir)
    if not folder.is_run:
        print(f"Warning: no results.json or log.txt in {run_dir}", file=sys.stderr)
        return None
    results, log = osp.join(run_dir, RESULTS_FILE), osp.join(run_dir, LOG_FILE)
    unreadable = None
    if folder.has(RESULTS_FILE):
        try:
            value = value_from_results(results, keyword)
        except ResultsError as e:
            unreadable, value = str(e), None
        if value is not None:
            return Found(results, value)
    if folder.has(LOG_FILE):
        try:
            value = value_from_log(log, keyword, end_signal)
        except OSError as e:
            return NoResult("unreadable", run_dir, unreadable or f"{log}: unreadable log.txt ({e.strerror or e})")
        if value is not None:
            if unreadable:
                print(f"Warning: {unreadable} (the value below comes from {log})", file=sys.stderr)
            return Found(log, value)
    if unreadable:
        return NoResult("unreadable", run_dir, unreadable)
    if folder.has(RESULTS_FILE):
        log_says = f'none after "{end_signal}"' if folder.has(LOG_FILE) else "is missing"
        return NoResult("no result", run_dir, f"{RESULTS_FILE} holds no {keyword} and {LOG_FILE} {log_says}")
    return NoResult("incomplete", run_dir, why_incomplete(folder, end_signal))


def why_incomplete(folder: RunFiles, end_signal: str) -> str:
    """What a run folder without a result holds, and what to do about it."""
    facts = [f"last checkpoint {folder.checkpoints[-1]}"] if folder.checkpoints else []
    if folder.has(LOG_FILE):
        facts.append(f'{LOG_FILE} has no result after "{end_signal}"')
    else:
        facts.append(f"no {LOG_FILE} and no {RESULTS_FILE}")
    advice = "run the script again to resume it" if folder.checkpoints else "failed, killed or still running"
    return ", ".join(facts) + f" ({'; '.join([*folder.hints(), advice])})"


def spread(values: list[float], ci95: bool) -> float:
    std = float(np.std(values))
    return 1.96 * std / np.sqrt(len(values)) if ci95 else std


def spread_statistic(n: int, ci95: bool) -> str:
    """What the number after +- is, printed under the summary (make_tables uses the sample std instead)."""
    std = f"the population std over {n} run(s) (n in the denominator, numpy's default, as CoOp and Dassl)"
    return f"the 95% confidence interval 1.96 x {std[4:]} / sqrt(n)" if ci95 else std


def parse_directory(directory: str, keyword: str, end_signal: str, ci95: bool) -> tuple[OrderedDict, list[NoResult]]:
    """Print one line per run, the runs without a result, and the mean +- spread over the others; return
    ({keyword: mean}, the runs without a result)."""
    print(f"Parsing files in {directory}")
    found: list[Found] = []
    missing: list[NoResult] = []
    for sub in subfolders(directory):
        run = read_run(osp.join(directory, sub), keyword, end_signal)
        if isinstance(run, Found):
            found.append(run)
        elif run is not None:
            missing.append(run)
    for run in found:
        print(f"file: {run.file}. {keyword}: {run.value:.2f}%. ")
    for problem in missing:
        print(problem.line())
    total = len(found) + len(missing)
    if not found:
        raise SystemExit(
            f"Nothing found in {directory}" + (f": none of its {total} runs has a result" if total else "")
        )
    if missing:
        print(f"Note: the summary covers {len(found)} of {total} runs; {len(missing)} without a result (listed above)")
    values = [run.value for run in found]
    mean = float(np.mean(values))
    print("===")
    print(f"Summary of directory: {directory}")
    print(f"* {keyword}: {mean:.2f}% +- {spread(values, ci95):.2f}%")
    print("===")
    print(f"(+- is {spread_statistic(len(values), ci95)})")
    return OrderedDict([(keyword, mean)]), missing


def main(argv: list[str] | None = None) -> OrderedDict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=str, help="folder of seed folders (or of experiments with --multi-exp)")
    parser.add_argument("--ci95", action="store_true", help="report the 95%% confidence interval instead of the std")
    parser.add_argument("--test-log", action="store_true", help='logs of eval-only runs: start at "=> result"')
    parser.add_argument("--multi-exp", action="store_true", help="each subfolder is an experiment of seed folders")
    parser.add_argument("--keyword", default="accuracy", type=str, help="metric: accuracy, error or macro_f1")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when any run has no result")
    args = parser.parse_args(argv)
    end_signal = "=> result" if args.test_log else "Finish training"

    if not args.multi_exp:
        result, missing = parse_directory(args.directory, args.keyword, end_signal, args.ci95)
        check_strict(args.strict, missing)
        return result
    experiments = subfolders(args.directory)
    means = defaultdict(list)
    partial, missing = [], []
    for sub in experiments:
        directory = osp.join(args.directory, sub)
        result, exp_missing = parse_directory(directory, args.keyword, end_signal, args.ci95)
        for key, value in result.items():
            means[key].append(value)
        if exp_missing:
            partial.append(directory)
        missing += exp_missing
    if partial:
        print(
            f"Note: {len(partial)} of {len(experiments)} experiments average only some of their runs: "
            + ", ".join(partial)
        )
    print("Average performance")
    for key, values in means.items():
        print(f"* {key}: {np.mean(values):.2f}%")
    check_strict(args.strict, missing)
    return OrderedDict((key, float(np.mean(values))) for key, values in means.items())


def check_strict(strict: bool, missing: list[NoResult]) -> None:
    """With --strict, exit with status 1 (after the summary) when any run has no result."""
    if strict and missing:
        folders = ", ".join(problem.folder for problem in missing)
        raise SystemExit(f"--strict: {len(missing)} run(s) without a result: {folders}")


if __name__ == "__main__":
    main()
