#!/usr/bin/env bash
# VP w/ SPSA-GC on a transfer-learning benchmark (reference scripts/vpour/tl_bench.sh, paper Table 1).
set -euo pipefail
USAGE_ARGS="DATASET EPOCH MOMS SPSA_A SPSA_C"
USAGE_HELP="Visual prompting (30-px pad) trained by SPSA-GC with a CLIP ViT-B/16 target;
fixed o=1.0, alpha=0.4, gamma=0.1.
  DATASET  a configs/datasets name (svhn, eurosat, ...)   EPOCH  training epochs
  MOMS     SPSA-GC momentum   SPSA_A  gain numerator   SPSA_C  perturbation scale"
USAGE_EXAMPLE="svhn 5000 0.9 10.0 0.01"
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/common.sh"
begin "$@"
expect_args 5 "$@"
dataset="$(dataset_arg "$1")"
epoch="$(positive_int EPOCH "$2")"
moms="$(number MOMS "$3")"
spsa_a="$(number SPSA_A "$4")"
spsa_c="$(number SPSA_C "$5")"
run_vpour "$dataset" vit_b16 "$epoch" "$moms" 0.4 "$spsa_a" "$spsa_c"
