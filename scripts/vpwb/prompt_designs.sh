#!/bin/sh
# The VP paper's prompt-design comparison (Bahng et al. 2022): padding, a fixed patch and a random patch, each at
# every prompt size, trained by back-propagation (white-box VP) on one dataset. Each design and size is one
# tl_bench run with EXTRA="TRAINER.VPWB.METHOD <design> TRAINER.VPWB.PROMPT_SIZE <size>" (its own folder, suffix
# _x<hash>); python scripts/make_tables.py OUTPUT gives each design and size its own row ("VP (white-box)
# [random_patch p=50]"; the paper's pad 30 is the plain row).
set -eu
. "$(cd "$(dirname "$0")/.." && pwd)/common.sh"

DESIGNS="padding fixed_patch random_patch"
DEFAULT_SIZES="10 30 50"
SELF="bash scripts/vpwb/prompt_designs.sh"

usage() {
    cat <<USAGE
Usage: $SELF DATASET EPOCH LR [SIZE ...]
  VP's three prompt designs ($DESIGNS) at each prompt size SIZE in pixels (default: $DEFAULT_SIZES):
  the pad width, or the patch side. A patch needs SIZE <= 224; padding needs 2 x SIZE < 224 and is skipped at
  a larger SIZE (the patches still run). Parameters: 3 x SIZE^2 for a patch,
  2 x 3 x SIZE x (448 - 2 x SIZE) for padding (2,700 and 69,840 at 30).
    DATASET  a configs/datasets name (svhn, eurosat, ...)   EPOCH  training epochs   LR  learning rate
  Every run takes the environment of scripts/vpwb/tl_bench.sh (see: bash scripts/vpwb/tl_bench.sh --help); an EXTRA
  given here is kept and the design keys are added to it.
Example: $SELF eurosat 1000 40.0 10 30 50
USAGE
}

fail() {
    echo "$SELF: $1" >&2
    usage >&2
    exit 2
}

if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
    usage
    exit 0
fi
[ $# -ge 3 ] || fail "expected DATASET EPOCH LR [SIZE ...], got $# arguments"
dataset=$1 epoch=$2 lr=$3
shift 3
[ $# -gt 0 ] || set -- $DEFAULT_SIZES
for size in "$@"; do
    case $size in
        "" | 0* | *[!0-9]*) fail "SIZE must be a positive integer, got '$size'" ;;
    esac
    [ "$size" -le 224 ] || fail "SIZE $size is larger than the 224-px image (every design needs SIZE <= 224)"
done

fits() {  # fits DESIGN SIZE: whether the design can be built at this size on 224-px images
    if [ "$1" = padding ]; then [ $((2 * $2)) -lt 224 ]; else [ "$2" -le 224 ]; fi
}

base_extra=${EXTRA:-}
set -f  # PYTHON is split at blanks, never globbed
for design in $DESIGNS; do
    for size in "$@"; do
        if ! fits "$design" "$size"; then
            echo "== $design, prompt size $size: skipped (the pad leaves no image inside: needs 2 x SIZE < 224)"
            continue
        fi
        echo "== $design, prompt size $size"
        # shellcheck disable=SC2086
        EXTRA="${base_extra:+$base_extra }TRAINER.VPWB.METHOD $design TRAINER.VPWB.PROMPT_SIZE $size" \
            ${PYTHON:-python} "$REPO_ROOT/scripts/launch.py" vpwb tl_bench "$dataset" "$epoch" "$lr"
    done
done
