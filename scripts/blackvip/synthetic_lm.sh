#!/bin/sh
# BlackVIP on Loc-MNIST (reference scripts/blackvip/synthetic_lm.sh, paper Table 2).
# Arguments, checks and what they become: configs/paper/recipes/blackvip.yaml (run by scripts/launch.py).
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/common.sh"
launch blackvip synthetic_lm "$@"
