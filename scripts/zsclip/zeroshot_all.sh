#!/bin/sh
# Zero-shot CLIP ViT-B/16 on every benchmark and synthetic setting (reference scripts/coop/zeroshot_all.sh).
# Arguments, checks and what they become: configs/paper/recipes/zsclip.yaml (run by scripts/launch.py).
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/common.sh"
launch zsclip zeroshot_all "$@"
