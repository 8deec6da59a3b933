#!/bin/sh
# BAR (black-box adversarial reprogramming) on a transfer-learning benchmark
# (reference scripts/reprogramming/tl_bench.sh).
# Arguments, checks and what they become: configs/paper/recipes/bar.yaml (run by scripts/launch.py).
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/common.sh"
launch bar tl_bench "$@"
