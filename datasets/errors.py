"""Errors for data that is not where a dataset expects it: what is missing, the expected layout, how to get it."""

from __future__ import annotations

import os.path as osp

from .layouts import Layout, command


class DatasetNotReadyError(FileNotFoundError):
    """A dataset folder, split file or image is missing."""


def not_ready(layout: Layout, root: str, problem: str) -> DatasetNotReadyError:
    """An error naming the dataset and the problem, showing the expected layout and the command that helps.

    Everything dataset-specific comes from the ``layout`` its module registered.
    """
    lines = [f"{layout.name}: {problem}", "Expected layout:", layout.tree(root)]
    if layout.generator:
        lines += ["Generate it with:", f"  {layout.generator}"]
        if layout.generator_note:
            lines.append(f"  ({layout.generator_note})")
    lines.append(
        f"Run `{command('python', '-m', 'datasets.prepare', layout.name, '--root', root)}` "
        "to see what is missing and where to get it."
    )
    return DatasetNotReadyError("\n".join(lines))


def require_layout(layout: Layout, root: str) -> str:
    """Raise ``DatasetNotReadyError`` unless the dataset folder and its required pieces exist; returns the folder.

    A generated folder whose manifest names other parameters than the layout expects is refused; one without a
    manifest (written before generators recorded one) loads with a warning that says how to regenerate it.
    """
    dataset_dir = osp.join(root, layout.folder)
    if not osp.isdir(dataset_dir):
        raise not_ready(layout, root, f'dataset folder not found: "{dataset_dir}"')
    problems = [
        f"{need.path} ({problem})" for need in layout.required if (problem := need.problem(dataset_dir)) is not None
    ]
    if problems:
        raise not_ready(layout, root, f'incomplete dataset folder "{dataset_dir}": ' + ", ".join(problems))
    for generated in layout.generated:
        problem = generated.problem(dataset_dir)
        if problem is None:
            continue
        if problem.kind == "mismatch":
            raise not_ready(
                layout, root, f'generated folder in "{dataset_dir}" does not match the config: {problem.message}'
            )
        print(f'Warning: {layout.name} in "{dataset_dir}": {problem.message}')
    return dataset_dir
