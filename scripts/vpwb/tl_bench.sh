#!/bin/sh
# White-box VP on a transfer-learning benchmark (reference scripts/vpwb/tl_bench.sh, paper Table 1).
# Arguments, checks and what they become: configs/paper/recipes/vpwb.yaml (run by scripts/launch.py).
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/common.sh"
launch vpwb tl_bench "$@"
