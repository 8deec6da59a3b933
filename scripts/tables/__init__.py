"""The paper's tables from an output folder: read the runs, aggregate them into tables, render, plot."""

from .aggregate import Cell, Report, Stats, Table, build_report, load_paper
from .plot import plot_queries
from .read import Row, Run, collect
from .render import RENDERERS

__all__ = [
    "RENDERERS",
    "Cell",
    "Report",
    "Row",
    "Run",
    "Stats",
    "Table",
    "build_report",
    "collect",
    "load_paper",
    "plot_queries",
]
