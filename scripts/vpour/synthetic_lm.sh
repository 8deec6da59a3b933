#!/bin/sh
# VP w/ SPSA-GC on Loc-MNIST (reference scripts/vpour/synthetic_lm.sh, whose BLACKVIP keys are fixed here).
# Arguments, checks and what they become: configs/paper/recipes/vpour.yaml (run by scripts/launch.py).
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/common.sh"
launch vpour synthetic_lm "$@"
