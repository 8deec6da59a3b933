#!/usr/bin/env bash
# BlackVIP on a transfer-learning benchmark (reference scripts/blackvip/tl_bench.sh, paper Table 1).
set -euo pipefail
USAGE_ARGS="DATASET EPOCH MOMS GAMMA SPSA_C P_EPS"
USAGE_HELP="BlackVIP (MAE coordinator, SPSA-GC) with a CLIP ViT-B/16 target; fixed o=1.0, a=0.01, alpha=0.4.
  DATASET  a configs/datasets name (svhn, eurosat, ...)   EPOCH  training epochs
  MOMS     SPSA-GC momentum      GAMMA  perturbation decay exponent
  SPSA_C   perturbation scale    P_EPS  prompt scale"
USAGE_EXAMPLE="svhn 5000 0.9 0.2 0.005 1.0"
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/common.sh"
begin "$@"
expect_args 6 "$@"
dataset="$(dataset_arg "$1")"
epoch="$(positive_int EPOCH "$2")"
moms="$(number MOMS "$3")"
gamma="$(number GAMMA "$4")"
spsa_c="$(number SPSA_C "$5")"
p_eps="$(number P_EPS "$6")"
run_blackvip "$dataset" vit_b16 vit-mae-base "$epoch" "$moms" 0.4 "$gamma" 0.01 "$spsa_c" "$p_eps"
