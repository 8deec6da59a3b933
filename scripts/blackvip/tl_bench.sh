#!/bin/sh
# BlackVIP on a transfer-learning benchmark (reference scripts/blackvip/tl_bench.sh, paper Table 1).
# Arguments, checks and what they become: configs/paper/recipes/blackvip.yaml (run by scripts/launch.py).
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/common.sh"
launch blackvip tl_bench "$@"
