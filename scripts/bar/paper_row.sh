#!/bin/sh
# The paper's BAR row: the family's scripts with the values of configs/paper/hparams.yaml.
# Arguments, checks and what they become: configs/paper/recipes/bar.yaml (run by scripts/launch.py).
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/common.sh"
launch bar paper_row "$@"
