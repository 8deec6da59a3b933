#!/bin/sh
# BAR on Loc-MNIST (reference scripts/reprogramming/synthetic_lm.sh).
# Arguments, checks and what they become: configs/paper/recipes/bar.yaml (run by scripts/launch.py).
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/common.sh"
launch bar synthetic_lm "$@"
