#!/bin/sh
# White-box VP on Colour-Biased MNIST, hard setting: train/test rho 0.9/0.1
# (reference scripts/vpwb/synthetic_bm_hard.sh).
# Arguments, checks and what they become: configs/paper/recipes/vpwb.yaml (run by scripts/launch.py).
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/common.sh"
launch vpwb synthetic_bm_hard "$@"
