#!/bin/sh
# The paper's VP w/ SPSA-GC row: the family's scripts with the values of configs/paper/hparams.yaml.
# Arguments, checks and what they become: configs/paper/recipes/vpour.yaml (run by scripts/launch.py).
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/common.sh"
launch vpour paper_row "$@"
