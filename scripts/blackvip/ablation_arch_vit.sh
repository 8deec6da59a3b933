#!/bin/sh
# BlackVIP architecture ablation with the vit-mae-base coordinator on EuroSAT
# (reference scripts/blackvip/ablation_arch_vit.sh).
# Arguments, checks and what they become: configs/paper/recipes/blackvip.yaml (run by scripts/launch.py).
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/common.sh"
launch blackvip ablation_arch_vit "$@"
