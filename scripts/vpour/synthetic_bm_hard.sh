#!/bin/sh
# VP w/ SPSA-GC on Colour-Biased MNIST, hard setting: train/test rho 0.9/0.1
# (reference scripts/vpour/synthetic_bm_hard.sh).
# Arguments, checks and what they become: configs/paper/recipes/vpour.yaml (run by scripts/launch.py).
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/common.sh"
launch vpour synthetic_bm_hard "$@"
