#!/usr/bin/env bash
# BlackVIP architecture ablation with the vit-mae-base coordinator on EuroSAT
# (reference scripts/blackvip/ablation_arch_vit.sh).
set -euo pipefail
USAGE_ARGS="CFG ALPHA MOMS GAMMA SPSA_C P_EPS"
USAGE_HELP="BlackVIP with the vit-mae-base coordinator encoder on EuroSAT;
fixed 5000 epochs (EPOCHS), o=1.0, a=0.01.
  CFG     target CLIP: rn50, rn101, vit_b32 or vit_b16   ALPHA  gain decay exponent
  MOMS    SPSA-GC momentum    GAMMA  perturbation decay exponent
  SPSA_C  perturbation scale  P_EPS  prompt scale"
USAGE_EXAMPLE="vit_b16 0.4 0.9 0.2 0.005 0.3"
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/common.sh"
begin "$@"
expect_args 6 "$@"
case "$1" in
    rn50 | rn101 | vit_b32 | vit_b16) cfg="$1" ;;
    *) die_usage "CFG must be rn50, rn101, vit_b32 or vit_b16, got '$1'" ;;
esac
alpha="$(number ALPHA "$2")"
moms="$(number MOMS "$3")"
gamma="$(number GAMMA "$4")"
spsa_c="$(number SPSA_C "$5")"
p_eps="$(number P_EPS "$6")"
run_blackvip eurosat "$cfg" vit-mae-base "$(fixed_epochs 5000)" "$moms" "$alpha" "$gamma" 0.01 "$spsa_c" "$p_eps"
