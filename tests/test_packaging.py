"""The toolkit installs with pip (editable and not) and its console commands run from the installed copy.

Each test installs a copy of the working tree into a fresh venv that sees the project venv's packages through a
``.pth`` file, with ``--no-deps --no-build-isolation``: nothing is downloaded and torch is not installed again.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ("bbvp-train", "bbvp-tables", "bbvp-quickstart")
pytestmark = pytest.mark.slow


def source_copy(dest: Path) -> Path:
    """The working tree's tracked and not-ignored files (what a fresh clone plus new work holds), copied to ``dest``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (os.fsdecode(n) for n in listed)):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    return dest


def fresh_venv(path: Path) -> Path:
    """A venv without pip whose interpreter also sees this interpreter's packages (pip, setuptools, torch, ...)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "_project_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def pip_install(python: Path, *args: str) -> None:
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index", *args],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def run_command(python: Path, name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BBVP_PLUGINS")}
    return subprocess.run([str(python.parent / name), *args], cwd=cwd, env=env, capture_output=True, text=True)


@pytest.mark.parametrize("editable", [True, False], ids=["editable", "wheel"])
def test_pip_install_gives_console_commands(tmp_path, editable):
    src = source_copy(tmp_path / "src")
    python = fresh_venv(tmp_path / "venv")
    pip_install(python, *(["-e", str(src)] if editable else [str(src)]))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in COMMANDS:
        proc = run_command(python, name, "--help", cwd=elsewhere)
        assert proc.returncode == 0 and "usage:" in proc.stdout, (name, proc.stderr[-2000:])
    helped = run_command(python, "bbvp-train", "--help", cwd=elsewhere).stdout
    assert "registered trainers: BAR, BLACKVIP" in helped and "registered datasets: Caltech101" in helped
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import train, dassl, trainers, datasets, scripts.make_tables, scripts.tables, bench;"
            "print(train.__file__); print(scripts.make_tables.__file__)",
        ],
        cwd=elsewhere,
        capture_output=True,
        text=True,
    )
    assert where.returncode == 0, where.stderr
    home = src if editable else tmp_path / "venv"
    assert all(Path(f).resolve().is_relative_to(home.resolve()) for f in where.stdout.split()), where.stdout


def test_dependencies_are_read_from_requirements_txt():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "dependencies" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["dependencies"] == {"file": ["requirements.txt"]}


def test_every_package_of_the_tree_is_installed():
    """A new top-level package (a folder with ``__init__.py``) must be in the include list, or it is left out."""
    import tomllib

    include = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    tops = {p.parent.name for p in REPO.glob("*/__init__.py")} - {"tests"}
    assert tops <= {name.rstrip("*") for name in include}, tops
