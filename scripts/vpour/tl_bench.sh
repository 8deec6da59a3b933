#!/bin/sh
# VP w/ SPSA-GC on a transfer-learning benchmark (reference scripts/vpour/tl_bench.sh, paper Table 1).
# Arguments, checks and what they become: configs/paper/recipes/vpour.yaml (run by scripts/launch.py).
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/common.sh"
launch vpour tl_bench "$@"
