# Shared by the reproduction scripts scripts/<family>/<script>.sh (sourced, never run on its own). POSIX sh, so the
# scripts run under sh (dash) as the reference's README calls them, and under bash, from any folder.
# What each script does (its arguments and their checks, the run folder, the train.py overrides) is data in
# configs/paper/recipes/<family>.yaml, run by scripts/launch.py; usage: sh scripts/<family>/<script>.sh --help.

# The sourcing script is scripts/<folder>/<script>.sh, run by path ($0), so the repository is two folders up.
REPO_ROOT="$(cd "$(dirname "$0")/../.." && pwd)"

# launch FAMILY SCRIPT [ARG ...]: hand the call to the launcher, run by PYTHON (default python, split at blanks,
# never globbed) from the caller's directory with the caller's environment; its exit status is the script's.
launch() {
    set -f
    # shellcheck disable=SC2086
    exec ${PYTHON:-python} "$REPO_ROOT/scripts/launch.py" "$@"
}
