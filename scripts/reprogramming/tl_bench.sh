#!/bin/sh
# The reference's folder name for BAR: the same as scripts/bar/tl_bench.sh (recipe configs/paper/recipes/bar.yaml).
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/common.sh"
launch bar tl_bench "$@"
