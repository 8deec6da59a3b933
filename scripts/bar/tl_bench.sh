#!/usr/bin/env bash
# BAR (black-box adversarial reprogramming) on a transfer-learning benchmark
# (reference scripts/reprogramming/tl_bench.sh).
set -euo pipefail
USAGE_ARGS="DATASET EPOCH INIT_LR MIN_LR"
USAGE_HELP="BAR: a 15-px frame around the 194-px image, trained by one-sided RGF with a CLIP ViT-B/16 target.
  DATASET  a configs/datasets name (svhn, eurosat, ...)   EPOCH  training epochs
  INIT_LR  initial learning rate   MIN_LR  final learning rate (polynomial decay)"
USAGE_EXAMPLE="svhn 5000 5.0 0.1"
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/common.sh"
begin "$@"
expect_args 4 "$@"
dataset="$(dataset_arg "$1")"
epoch="$(positive_int EPOCH "$2")"
init_lr="$(number INIT_LR "$3")"
min_lr="$(number MIN_LR "$4")"
run_bar "$dataset" vit_b16 "$epoch" "$init_lr" "$min_lr"
