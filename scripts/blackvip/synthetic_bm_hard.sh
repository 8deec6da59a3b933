#!/bin/sh
# BlackVIP on Colour-Biased MNIST, hard setting: train/test rho 0.9/0.1
# (reference scripts/blackvip/synthetic_bm_hard.sh).
# Arguments, checks and what they become: configs/paper/recipes/blackvip.yaml (run by scripts/launch.py).
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/common.sh"
launch blackvip synthetic_bm_hard "$@"
