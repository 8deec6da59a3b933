#!/usr/bin/env bash
# White-box VP on a transfer-learning benchmark (reference scripts/vpwb/tl_bench.sh, paper Table 1).
set -euo pipefail
USAGE_ARGS="DATASET EPOCH LR"
USAGE_HELP="Visual prompting (30-px pad) trained by back-propagation through CLIP ViT-B/16 (SGD, cosine schedule).
  DATASET  a configs/datasets name (svhn, eurosat, ...)   EPOCH  training epochs   LR  learning rate"
USAGE_EXAMPLE="svhn 1000 40.0"
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/common.sh"
begin "$@"
expect_args 3 "$@"
dataset="$(dataset_arg "$1")"
epoch="$(positive_int EPOCH "$2")"
lr="$(number LR "$3")"
run_vpwb "$dataset" vit_b16 "$epoch" "$lr"
