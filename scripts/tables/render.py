"""A report as Markdown, LaTeX or CSV text."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable

from tabulate import tabulate

from .aggregate import Report

LATEX_SYMBOLS = {"±": r"$\pm$", "ρ": r"$\rho$", "Δ": r"$\Delta$", "–": "--"}


def latex_escape(text: str) -> str:
    text = re.sub(r"([_%&#$])", r"\\\1", text)
    for symbol, command in LATEX_SYMBOLS.items():
        text = text.replace(symbol, command)
    return text


def render_markdown(report: Report) -> str:
    parts = []
    for t in report.tables:
        table = tabulate(t.rows, t.headers, tablefmt="github", disable_numparse=True)
        parts.append(f"### {t.title}\n\n{t.caption}\n\n{table}")
    for title, lines in report.notes:
        items = [f"  - {line.strip()}" if line.startswith(" ") else f"- {line}" for line in lines]
        parts.append(f"### {title}\n\n" + "\n".join(items))
    return "\n\n".join(parts) + "\n"


def render_latex(report: Report) -> str:
    parts = []
    for t in report.tables:
        rows = [[latex_escape(c) for c in row] for row in t.rows]
        body = tabulate(rows, [latex_escape(h) for h in t.headers], tablefmt="latex_raw", disable_numparse=True)
        parts.append(f"% {t.title}: {t.caption}\n{body}")
    for title, lines in report.notes:
        parts.append("\n".join([f"% {title}"] + [f"% {line}" for line in lines]))
    return "\n\n".join(parts) + "\n"


def render_csv(report: Report) -> str:
    """One block per table (a title row, the header, the rows), blocks separated by an empty line."""
    blocks = []
    for t in report.tables:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([f"{t.title}: {t.caption}"])
        writer.writerow(t.headers)
        writer.writerows(t.rows)
        blocks.append(buffer.getvalue())
    return "\n".join(blocks)


RENDERERS: dict[str, Callable[[Report], str]] = {"markdown": render_markdown, "latex": render_latex, "csv": render_csv}
