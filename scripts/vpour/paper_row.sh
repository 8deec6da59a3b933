#!/usr/bin/env bash
# The paper's VP w/ SPSA-GC row: the family's scripts with the values of configs/paper/hparams.yaml.
set -euo pipefail
USAGE_ARGS="[NAME ...]"
USAGE_HELP="Runs VP w/ SPSA-GC with the paper's hyper-parameters on each NAME (default: the 14 transfer benchmarks).
  NAME  a transfer dataset (svhn, ...), a synthetic setting (colour_biased_mnist_easy, colour_biased_mnist_hard,
        locmnist_r1_f1, locmnist_r1_f4), or a group: transfer, synthetic.
  SHOTS=32 gives the synthetic tables' 32-shot columns (the paper reuses the 16-shot values)."
USAGE_EXAMPLE="svhn eurosat"
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/common.sh"
begin "$@"
paper_row vpour "$@"
