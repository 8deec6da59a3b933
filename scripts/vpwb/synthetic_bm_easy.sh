#!/usr/bin/env bash
# White-box VP on Colour-Biased MNIST, easy setting: train/test rho 0.8/0.2
# (reference scripts/vpwb/synthetic_bm_easy.sh).
set -euo pipefail
USAGE_ARGS="LR"
USAGE_HELP="White-box VP on Colour-Biased MNIST with train/test colour correlation rho 0.8/0.2, no augmentation;
fixed 1000 epochs (EPOCHS).
  LR  learning rate"
USAGE_EXAMPLE="40.0"
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/common.sh"
begin "$@"
expect_args 1 "$@"
lr="$(number LR "$1")"
run_vpwb colour_biased_mnist_easy vit_b16_noaug "$(fixed_epochs 1000)" "$lr"
