#!/usr/bin/env bash
# VP w/ SPSA-GC on Loc-MNIST (reference scripts/vpour/synthetic_lm.sh, whose BLACKVIP keys are fixed here).
set -euo pipefail
USAGE_ARGS="FSIZE MOMS ALPHA SPSA_A SPSA_C"
USAGE_HELP="VP w/ SPSA-GC on Loc-MNIST (real digit 1x, fake digit FSIZE x), no augmentation;
fixed 5000 epochs (EPOCHS), o=1.0, gamma=0.1.
  FSIZE   fake-digit scale (1 or 4)   MOMS    SPSA-GC momentum
  ALPHA   gain decay exponent         SPSA_A  gain numerator    SPSA_C  perturbation scale"
USAGE_EXAMPLE="1 0.9 0.5 10.0 0.01"
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/common.sh"
begin "$@"
expect_args 5 "$@"
fsize="$(positive_int FSIZE "$1")"
moms="$(number MOMS "$2")"
alpha="$(number ALPHA "$3")"
spsa_a="$(number SPSA_A "$4")"
spsa_c="$(number SPSA_C "$5")"
run_vpour "locmnist_r1_f$fsize" vit_b16_noaug "$(fixed_epochs 5000)" "$moms" "$alpha" "$spsa_a" "$spsa_c"
