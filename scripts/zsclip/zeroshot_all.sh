#!/usr/bin/env bash
# Zero-shot CLIP ViT-B/16 on every benchmark and synthetic setting (reference scripts/coop/zeroshot_all.sh).
set -euo pipefail
USAGE_ARGS="[NAME ...]"
USAGE_HELP="Evaluates ZeroshotCLIP (--eval-only, seed 1; SEEDS and SHOTS do not apply) on each NAME.
  NAME  a configs/datasets name or a synthetic setting (colour_biased_mnist_easy, colour_biased_mnist_hard,
        locmnist_r1_f1, locmnist_r1_f4; locmnist and colour_biased_mnist mean both of their settings).
  Default: the 14 transfer benchmarks and the 4 synthetic settings."
USAGE_EXAMPLE="svhn eurosat locmnist"
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/common.sh"
begin "$@"
settings=()
for name in ${@:-$TRANSFER_DATASETS $SYNTHETIC_SETTINGS}; do
    case "$name" in
        locmnist) settings+=(locmnist_r1_f1 locmnist_r1_f4) ;;
        colour_biased_mnist) settings+=(colour_biased_mnist_easy colour_biased_mnist_hard) ;;
        colour_biased_mnist_easy | colour_biased_mnist_hard) settings+=("$name") ;;
        *)
            if [[ $name =~ ^locmnist_r1_f[1-9][0-9]*$ ]]; then
                settings+=("$name")
            else
                settings+=("$(dataset_arg "$name")")
            fi ;;
    esac
done
for setting in "${settings[@]}"; do
    run_zeroshot "$setting"
done
