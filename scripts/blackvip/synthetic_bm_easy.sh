#!/bin/sh
# BlackVIP on Colour-Biased MNIST, easy setting: train/test rho 0.8/0.2
# (reference scripts/blackvip/synthetic_bm_easy.sh).
# Arguments, checks and what they become: configs/paper/recipes/blackvip.yaml (run by scripts/launch.py).
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/common.sh"
launch blackvip synthetic_bm_easy "$@"
