#!/usr/bin/env bash
# BAR on Colour-Biased MNIST, easy setting: train/test rho 0.8/0.2
# (reference scripts/reprogramming/synthetic_bm_easy.sh).
set -euo pipefail
USAGE_ARGS="INIT_LR MIN_LR"
USAGE_HELP="BAR on Colour-Biased MNIST with train/test colour correlation rho 0.8/0.2, no augmentation;
fixed 5000 epochs (EPOCHS).
  INIT_LR  initial learning rate   MIN_LR  final learning rate"
USAGE_EXAMPLE="5.0 0.1"
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/common.sh"
begin "$@"
expect_args 2 "$@"
init_lr="$(number INIT_LR "$1")"
min_lr="$(number MIN_LR "$2")"
run_bar colour_biased_mnist_easy vit_b16_noaug "$(fixed_epochs 5000)" "$init_lr" "$min_lr"
