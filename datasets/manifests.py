"""Manifests of generated dataset folders: the generator that wrote a folder, its version and its parameters.

A generator writes ``generator.json`` last, inside the staging folder that then replaces the old output whole, so a
folder with a manifest is complete. Datasets and ``datasets.prepare`` compare it with what the config asks for.
"""

from __future__ import annotations

import json
import os.path as osp
from dataclasses import dataclass
from typing import Any

from dassl.utils import write_json

MANIFEST = "generator.json"
_ABSENT = object()


def write_manifest(folder: str, generator: str, version: int, params: dict[str, Any]) -> None:
    """Record in ``folder/generator.json`` which generator (module and version) wrote it, with which parameters."""
    write_json({"generator": generator, "version": version, "params": params}, osp.join(folder, MANIFEST))


def read_manifest(folder: str) -> dict[str, Any] | None:
    """The manifest of ``folder``; None when there is none. A damaged one raises ``ValueError`` naming the file."""
    path = osp.join(folder, MANIFEST)
    if not osp.isfile(path):
        return None
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f'cannot read "{path}" ({e})') from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("params"), dict):
        raise ValueError(f'"{path}" is not a generator manifest (expected {{"generator", "version", "params"}})')
    return manifest


@dataclass(frozen=True)
class ManifestProblem:
    """Why a generated folder cannot be trusted: ``kind`` is "unknown" (no readable manifest) or "mismatch"."""

    kind: str
    message: str


@dataclass(frozen=True)
class Generated:
    """A folder a generator writes whole (relative to the dataset folder, "" for the dataset folder itself), the
    generator module and version, the parameters a dataset expects in its manifest and the command that makes it."""

    folder: str
    generator: str
    version: int
    params: tuple[tuple[str, Any], ...]
    command: str

    def manifest_name(self) -> str:
        """The manifest's path relative to the dataset folder."""
        return osp.join(self.folder, MANIFEST) if self.folder else MANIFEST

    def problem(self, dataset_dir: str) -> ManifestProblem | None:
        """None when the folder is absent (reported as missing elsewhere) or its manifest matches."""
        folder = osp.normpath(osp.join(dataset_dir, self.folder))
        if not osp.isdir(folder):
            return None
        regenerate = f"Regenerate it (the generator is deterministic): {self.command}"
        try:
            manifest = read_manifest(folder)
        except ValueError as e:
            return ManifestProblem("unknown", f"{e}. {regenerate}")
        if manifest is None:
            return ManifestProblem(
                "unknown",
                f'"{folder}" has no {MANIFEST}: it was written before generators recorded their parameters, or by a '
                f"generation that did not finish, so what it holds is unknown. {regenerate}",
            )
        found = {"generator": manifest.get("generator"), "version": manifest.get("version"), **manifest["params"]}
        expected = {"generator": self.generator, "version": self.version, **dict(self.params)}
        differences = [
            f"{key}={found[key]!r} (expected {value!r})" if key in found else f"no {key} (expected {value!r})"
            for key, value in expected.items()
            if found.get(key, _ABSENT) != value
        ]
        if not differences:
            return None
        return ManifestProblem(
            "mismatch",
            f'"{folder}" was generated with {", ".join(differences)} according to its {MANIFEST}. {regenerate}',
        )
