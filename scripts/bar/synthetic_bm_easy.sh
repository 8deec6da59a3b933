#!/bin/sh
# BAR on Colour-Biased MNIST, easy setting: train/test rho 0.8/0.2
# (reference scripts/reprogramming/synthetic_bm_easy.sh).
# Arguments, checks and what they become: configs/paper/recipes/bar.yaml (run by scripts/launch.py).
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/common.sh"
launch bar synthetic_bm_easy "$@"
