#!/usr/bin/env bash
# BlackVIP on Colour-Biased MNIST, hard setting: train/test rho 0.9/0.1
# (reference scripts/blackvip/synthetic_bm_hard.sh).
set -euo pipefail
USAGE_ARGS="MOMS ALPHA SPSA_A SPSA_C"
USAGE_HELP="BlackVIP on Colour-Biased MNIST with train/test colour correlation rho 0.9/0.1, no augmentation;
fixed 5000 epochs (EPOCHS), o=1.0, gamma=0.1, p_eps=1.0.
  MOMS    SPSA-GC momentum    ALPHA   gain decay exponent
  SPSA_A  gain numerator      SPSA_C  perturbation scale"
USAGE_EXAMPLE="0.9 0.4 0.01 0.01"
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/common.sh"
begin "$@"
expect_args 4 "$@"
moms="$(number MOMS "$1")"
alpha="$(number ALPHA "$2")"
spsa_a="$(number SPSA_A "$3")"
spsa_c="$(number SPSA_C "$4")"
run_blackvip colour_biased_mnist_hard vit_b16_noaug vit-mae-base "$(fixed_epochs 5000)" \
    "$moms" "$alpha" 0.1 "$spsa_a" "$spsa_c" 1
