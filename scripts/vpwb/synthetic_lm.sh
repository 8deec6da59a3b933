#!/bin/sh
# White-box VP on Loc-MNIST (reference scripts/vpwb/synthetic_lm.sh).
# Arguments, checks and what they become: configs/paper/recipes/vpwb.yaml (run by scripts/launch.py).
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/common.sh"
launch vpwb synthetic_lm "$@"
