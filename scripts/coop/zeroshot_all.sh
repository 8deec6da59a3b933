#!/bin/sh
# The reference's path for zero-shot CLIP on every setting: the same as scripts/zsclip/zeroshot_all.sh
# (recipe configs/paper/recipes/zsclip.yaml).
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/common.sh"
launch zsclip zeroshot_all "$@"
