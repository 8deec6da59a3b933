#!/bin/sh
# The reference's folder name for BAR: the same as scripts/bar/synthetic_lm.sh (recipe configs/paper/recipes/bar.yaml).
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/common.sh"
launch bar synthetic_lm "$@"
