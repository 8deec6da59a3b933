#!/bin/sh
# The paper's white-box VP row: the family's scripts with the values of configs/paper/hparams.yaml.
# Arguments, checks and what they become: configs/paper/recipes/vpwb.yaml (run by scripts/launch.py).
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/common.sh"
launch vpwb paper_row "$@"
