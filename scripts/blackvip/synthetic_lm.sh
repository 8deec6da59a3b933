#!/usr/bin/env bash
# BlackVIP on Loc-MNIST (reference scripts/blackvip/synthetic_lm.sh, paper Table 2).
set -euo pipefail
USAGE_ARGS="FSIZE MOMS ALPHA SPSA_A SPSA_C"
USAGE_HELP="BlackVIP on Loc-MNIST (real digit 1x, fake digit FSIZE x: 1 gives 1:1, 4 gives 1:4), no augmentation;
fixed 5000 epochs (EPOCHS), o=1.0, gamma=0.1, p_eps=1.0.
  FSIZE   fake-digit scale (1 or 4)   MOMS    SPSA-GC momentum
  ALPHA   gain decay exponent         SPSA_A  gain numerator    SPSA_C  perturbation scale"
USAGE_EXAMPLE="1 0.9 0.5 0.01 0.005"
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/common.sh"
begin "$@"
expect_args 5 "$@"
fsize="$(positive_int FSIZE "$1")"
moms="$(number MOMS "$2")"
alpha="$(number ALPHA "$3")"
spsa_a="$(number SPSA_A "$4")"
spsa_c="$(number SPSA_C "$5")"
run_blackvip "locmnist_r1_f$fsize" vit_b16_noaug vit-mae-base "$(fixed_epochs 5000)" \
    "$moms" "$alpha" 0.1 "$spsa_a" "$spsa_c" 1
