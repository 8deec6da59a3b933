#!/usr/bin/env bash
# White-box VP on Loc-MNIST (reference scripts/vpwb/synthetic_lm.sh).
set -euo pipefail
USAGE_ARGS="FSIZE LR"
USAGE_HELP="White-box VP on Loc-MNIST (real digit 1x, fake digit FSIZE x), no augmentation; fixed 1000 epochs (EPOCHS).
  FSIZE  fake-digit scale (1 or 4)   LR  learning rate"
USAGE_EXAMPLE="1 10.0"
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/common.sh"
begin "$@"
expect_args 2 "$@"
fsize="$(positive_int FSIZE "$1")"
lr="$(number LR "$2")"
run_vpwb "locmnist_r1_f$fsize" vit_b16_noaug "$(fixed_epochs 1000)" "$lr"
