#!/usr/bin/env bash
# BAR on Loc-MNIST (reference scripts/reprogramming/synthetic_lm.sh).
set -euo pipefail
USAGE_ARGS="FSIZE INIT_LR MIN_LR"
USAGE_HELP="BAR on Loc-MNIST (real digit 1x, fake digit FSIZE x), no augmentation; fixed 5000 epochs (EPOCHS).
  FSIZE  fake-digit scale (1 or 4)   INIT_LR  initial learning rate   MIN_LR  final learning rate"
USAGE_EXAMPLE="1 5.0 0.5"
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/common.sh"
begin "$@"
expect_args 3 "$@"
fsize="$(positive_int FSIZE "$1")"
init_lr="$(number INIT_LR "$2")"
min_lr="$(number MIN_LR "$3")"
run_bar "locmnist_r1_f$fsize" vit_b16_noaug "$(fixed_epochs 5000)" "$init_lr" "$min_lr"
