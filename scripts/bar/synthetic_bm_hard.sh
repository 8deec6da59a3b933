#!/bin/sh
# BAR on Colour-Biased MNIST, hard setting: train/test rho 0.9/0.1
# (reference scripts/reprogramming/synthetic_bm_hard.sh).
# Arguments, checks and what they become: configs/paper/recipes/bar.yaml (run by scripts/launch.py).
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/common.sh"
launch bar synthetic_bm_hard "$@"
