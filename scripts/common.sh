# Shared by the reproduction scripts scripts/<family>/<script>.sh (sourced, never run on its own).
# What each script does (its arguments and their checks, the run folder, the train.py overrides) is data in
# configs/paper/recipes/<family>.yaml, run by scripts/launch.py; usage: bash scripts/<family>/<script>.sh --help.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# launch FAMILY SCRIPT [ARG ...]: hand the call to the launcher, run by PYTHON (default python) from the caller's
# directory with the caller's environment; its exit status is the script's.
launch() {
    local python=()
    read -r -a python <<<"${PYTHON:-python}"
    exec "${python[@]}" "$REPO_ROOT/scripts/launch.py" "$@"
}
