# Shared logic of the reproduction scripts, sourced by scripts/<family>/*.sh (never run on its own):
# the environment, argument checks and usage, the seed loop with skip/resume, and one runner per method
# that turns hyper-parameters into train.py overrides and an output folder naming all of them.
#
# A calling script sets USAGE_ARGS, USAGE_HELP and USAGE_EXAMPLE, sources this file and calls `begin "$@"`.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRIPT_NAME="scripts/$(basename "$(dirname "${BASH_SOURCE[1]}")")/$(basename "${BASH_SOURCE[1]}")"
TRANSFER_DATASETS="caltech101 oxford_pets stanford_cars oxford_flowers food101 fgvc_aircraft sun397 dtd svhn
eurosat resisc45 clevr ucf101 imagenet"
SYNTHETIC_SETTINGS="colour_biased_mnist_easy colour_biased_mnist_hard locmnist_r1_f1 locmnist_r1_f4"

usage() {
    cat <<EOF
Usage: bash $SCRIPT_NAME $USAGE_ARGS
$USAGE_HELP
Example: bash $SCRIPT_NAME $USAGE_EXAMPLE

Environment (optional):
  DATA=./data  OUTPUT=./output  (relative to the current directory)
  SEEDS="1 2 3"  SHOTS=16  PYTHON=python  CKPT_FREQ=500 (checkpoint every N epochs, for resuming)
  EXTRA="KEY VALUE ..."  more config overrides (values without spaces); the output folder gets a suffix _x<hash>
  EPOCHS=N  replaces a fixed epoch count (synthetic_*, ablation_*, paper_row); the output path records it
  DRY_RUN=1  print the train.py commands (and skips) without running anything
A run whose folder holds results.json is skipped; one with a checkpoint but no results.json resumes.
EOF
}

die_usage() {
    echo "Error: $*" >&2
    echo >&2
    usage >&2
    exit 2
}

absolute() {
    case "$1" in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s\n' "$PWD/${1#./}" ;;
    esac
}

is_count() { [[ $1 =~ ^[0-9]+$ ]]; }

is_number() { [[ $1 =~ ^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$ ]]; }

# number NAME VALUE: VALUE in one canonical spelling (1.0 and 1 give "1"), so equal values share a folder.
number() {
    is_number "$2" || die_usage "$1 must be a number, got '$2'"
    LC_ALL=C printf '%.10g' "$2"
}

# positive_int NAME VALUE: VALUE without leading zeros, or a usage error.
positive_int() {
    is_count "$2" && [ "$((10#$2))" -gt 0 ] || die_usage "$1 must be a positive integer, got '$2'"
    printf '%d' "$((10#$2))"
}

known_datasets() {
    local f names=""
    for f in "$REPO_ROOT"/configs/datasets/*.yaml; do names+="$(basename "$f" .yaml) "; done
    printf '%s' "${names% }"
}

# dataset_arg NAME: NAME if configs/datasets/NAME.yaml exists, else a usage error listing the known names.
dataset_arg() {
    [[ $1 =~ ^[a-z0-9_]+$ ]] && [ -f "$REPO_ROOT/configs/datasets/$1.yaml" ] ||
        die_usage "unknown dataset '$1' (known: $(known_datasets))"
    printf '%s' "$1"
}

expect_args() {
    local want=$1
    shift
    [ "$#" -eq "$want" ] || die_usage "expected $want arguments, got $#"
}

# begin "$@": answer --help, check and resolve the environment, then work from the repository root.
begin() {
    case "${1:-}" in -h | --help) usage; exit 0 ;; esac
    DATA="$(absolute "${DATA:-./data}")"
    OUTPUT="$(absolute "${OUTPUT:-./output}")"
    export DATA OUTPUT
    SEEDS="${SEEDS:-1 2 3}"
    SHOTS="$(positive_int SHOTS "${SHOTS:-16}")"
    CKPT_FREQ="${CKPT_FREQ:-500}"
    DRY_RUN="${DRY_RUN:-0}"
    local seed
    [ -n "${SEEDS// /}" ] || die_usage "SEEDS is empty"
    for seed in $SEEDS; do is_count "$seed" || die_usage "SEEDS must hold non-negative integers, got '$seed'"; done
    is_count "$CKPT_FREQ" || die_usage "CKPT_FREQ must be a non-negative integer, got '$CKPT_FREQ'"
    [ "$DRY_RUN" = 0 ] || [ "$DRY_RUN" = 1 ] || die_usage "DRY_RUN must be 0 or 1, got '$DRY_RUN'"
    [ -z "${EPOCHS:-}" ] || EPOCHS="$(positive_int EPOCHS "$EPOCHS")"
    read -r -a PYTHON_CMD <<<"${PYTHON:-python}"
    read -r -a EXTRA_ARGS <<<"${EXTRA:-}"
    [ $((${#EXTRA_ARGS[@]} % 2)) -eq 0 ] || die_usage "EXTRA must hold KEY VALUE pairs, got '${EXTRA:-}'"
    SUFFIX="$(extra_suffix)"
    cd "$REPO_ROOT"
    [ "$DRY_RUN" = 0 ] || echo "# dry run: nothing is run; commands are relative to $REPO_ROOT"
}

# extra_suffix: "_x" and 8 hex digits of a checksum of EXTRA (empty without EXTRA), stable across machines.
extra_suffix() {
    [ "${#EXTRA_ARGS[@]}" -gt 0 ] || return 0
    local sum
    sum="$(printf '%s' "${EXTRA_ARGS[*]}" | cksum)"
    printf '_x%08x' "${sum%% *}"
}

# fixed_epochs DEFAULT: the script's fixed epoch count, or EPOCHS when set.
fixed_epochs() { printf '%s' "${EPOCHS:-$1}"; }

shell_quote() {
    local arg out=""
    for arg in "$@"; do
        if [[ $arg =~ ^[A-Za-z0-9_./:=+,@%-]+$ ]]; then
            out+="$arg "
        else
            out+="'${arg//\'/\'\\\'\'}' "
        fi
    done
    printf '%s\n' "${out% }"
}

has_checkpoint() {
    local f
    for f in "$1"/*/checkpoint; do [ -f "$f" ] && return 0; done
    return 1
}

# run_train ARGS...: print the train.py command, then run it unless DRY_RUN=1.
run_train() {
    local cmd=("${PYTHON_CMD[@]}" train.py "$@")
    echo "Run: $(shell_quote "${cmd[@]}")"
    [ "$DRY_RUN" = 1 ] || "${cmd[@]}"
}

# run_seeds RUN_DIR TRAINER DATASET CFG [ARGS...]: one run per seed in RUN_DIR/seed<S>; finished runs are skipped,
# unfinished ones resume (train.py continues from the checkpoint in its output folder). EXTRA comes last.
run_seeds() {
    local run_dir=$1 trainer=$2 dataset=$3 cfg=$4 seed out
    shift 4
    for seed in $SEEDS; do
        out="$run_dir/seed$seed"
        if [ -f "$out/results.json" ]; then
            echo "Skip: finished run in $out (results.json exists)"
            continue
        fi
        if has_checkpoint "$out"; then
            echo "Resume: unfinished run in $out (checkpoint found)"
        elif [ -d "$out" ]; then
            echo "Restart: unfinished run in $out has no checkpoint yet, training from scratch"
        fi
        run_train --root "$DATA" --seed "$seed" --trainer "$trainer" \
            --dataset-config-file "configs/datasets/$dataset.yaml" \
            --config-file "configs/trainers/$trainer/$cfg.yaml" \
            --output-dir "$out" "$@" ${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"}
    done
}

# train_seeds RUN_DIR TRAINER DATASET CFG [KEY VALUE...]: run_seeds with the reference's common training overrides.
train_seeds() {
    local run_dir=$1 trainer=$2 dataset=$3 cfg=$4
    shift 4
    run_seeds "$run_dir" "$trainer" "$dataset" "$cfg" "$@" \
        DATASET.NUM_SHOTS "$SHOTS" DATASET.SUBSAMPLE_CLASSES all TRAIN.CHECKPOINT_FREQ "$CKPT_FREQ"
}

# select_setting NAME: DATASET_STEM and SETTING_OPTS for a dataset name or a synthetic setting
# (locmnist_r1_f<F>, colour_biased_mnist_easy, colour_biased_mnist_hard). NAME is also the output folder.
select_setting() {
    SETTING_OPTS=()
    case "$1" in
        locmnist_r1_f*)
            DATASET_STEM=locmnist
            SETTING_OPTS=(DATASET.LOCMNIST.R_SIZE 1 DATASET.LOCMNIST.F_SIZE "${1#locmnist_r1_f}") ;;
        colour_biased_mnist_easy)
            DATASET_STEM=colour_biased_mnist
            SETTING_OPTS=(DATASET.COLOUR_BIASED_MNIST.TRAIN_RHO 0.8 DATASET.COLOUR_BIASED_MNIST.TEST_RHO 0.2) ;;
        colour_biased_mnist_hard)
            DATASET_STEM=colour_biased_mnist
            SETTING_OPTS=(DATASET.COLOUR_BIASED_MNIST.TRAIN_RHO 0.9 DATASET.COLOUR_BIASED_MNIST.TEST_RHO 0.1) ;;
        *) DATASET_STEM="$1" ;;
    esac
}

# ---------------------------------------------------------------- one runner per method
# Output: OUTPUT/<setting>/<TRAINER>/<config>/shot<S>_ep<E>/<method hyper-parameters><EXTRA suffix>/seed<S>

# run_blackvip SETTING CFG PT_BACKBONE EPOCH MOMS ALPHA GAMMA SPSA_A SPSA_C P_EPS (SPSA-GC, o=1.0, 5 perturbations)
run_blackvip() {
    local setting=$1 cfg=$2 ptb=$3 epoch=$4 moms=$5 alpha=$6 gamma=$7 a=$8 c=$9 p_eps=${10} src_dim=1568
    local spsa="spsa-gc_b1$moms/a${alpha}_g${gamma}_sa${a}_sc${c}_eps$p_eps"
    [ "$ptb" != dino-resnet-50 ] || src_dim=3136
    select_setting "$setting"
    train_seeds "$OUTPUT/$setting/BLACKVIP/${ptb}_$cfg/shot${SHOTS}_ep$epoch/$spsa$SUFFIX" \
        BLACKVIP "$DATASET_STEM" "$cfg" ${SETTING_OPTS[@]+"${SETTING_OPTS[@]}"} OPTIM.MAX_EPOCH "$epoch" \
        TRAINER.BLACKVIP.PT_BACKBONE "$ptb" TRAINER.BLACKVIP.SRC_DIM "$src_dim" \
        TRAINER.BLACKVIP.SPSA_PARAMS "[1.0,$c,$a,$alpha,$gamma]" TRAINER.BLACKVIP.OPT_TYPE spsa-gc \
        TRAINER.BLACKVIP.MOMS "$moms" TRAINER.BLACKVIP.SP_AVG 5 TRAINER.BLACKVIP.P_EPS "$p_eps"
}

# run_vpour SETTING CFG EPOCH MOMS ALPHA SPSA_A SPSA_C (VP w/ SPSA-GC: o=1.0, gamma=0.1, 5 perturbations)
run_vpour() {
    local setting=$1 cfg=$2 epoch=$3 moms=$4 alpha=$5 a=$6 c=$7
    select_setting "$setting"
    train_seeds "$OUTPUT/$setting/VPOUR/$cfg/shot${SHOTS}_ep$epoch/spsa-gc_b1$moms/a${alpha}_g0.1_sa${a}_sc$c$SUFFIX" \
        VPOUR "$DATASET_STEM" "$cfg" ${SETTING_OPTS[@]+"${SETTING_OPTS[@]}"} OPTIM.MAX_EPOCH "$epoch" \
        TRAINER.VPOUR.SPSA_PARAMS "[1.0,$c,$a,$alpha,0.1]" TRAINER.VPOUR.OPT_TYPE spsa-gc \
        TRAINER.VPOUR.MOMS "$moms" TRAINER.VPOUR.SP_AVG 5
}

# run_bar SETTING CFG EPOCH INIT_LR MIN_LR (image 194 px inside the 224 frame)
run_bar() {
    local setting=$1 cfg=$2 epoch=$3 init_lr=$4 min_lr=$5
    select_setting "$setting"
    train_seeds "$OUTPUT/$setting/BAR/$cfg/shot${SHOTS}_ep$epoch/lr${init_lr}_min$min_lr$SUFFIX" \
        BAR "$DATASET_STEM" "$cfg" ${SETTING_OPTS[@]+"${SETTING_OPTS[@]}"} OPTIM.MAX_EPOCH "$epoch" \
        TRAINER.BAR.LRS "[$init_lr,$min_lr]" INPUT.SIZE "[194,194]"
}

# run_vpwb SETTING CFG EPOCH LR (white-box VP, back-propagation)
run_vpwb() {
    local setting=$1 cfg=$2 epoch=$3 lr=$4
    select_setting "$setting"
    train_seeds "$OUTPUT/$setting/VPWB/$cfg/shot${SHOTS}_ep$epoch/lr$lr$SUFFIX" \
        VPWB "$DATASET_STEM" "$cfg" ${SETTING_OPTS[@]+"${SETTING_OPTS[@]}"} OPTIM.MAX_EPOCH "$epoch" OPTIM.LR "$lr"
}

# run_zeroshot SETTING: zero-shot CLIP ViT-B/16, evaluation only, seed 1 (SEEDS does not apply).
run_zeroshot() {
    select_setting "$1"
    SEEDS=1 run_seeds "$OUTPUT/$1/ZeroshotCLIP/vit_b16$SUFFIX" ZeroshotCLIP "$DATASET_STEM" vit_b16 \
        --eval-only ${SETTING_OPTS[@]+"${SETTING_OPTS[@]}"}
}

# paper_row FAMILY [NAME...]: the family's scripts with the paper's values from configs/paper/hparams.yaml.
# NAMEs are checked before anything runs; a failing dataset does not stop the others (exit 1 at the end).
paper_row() {
    local family=$1 plan line failed=""
    shift
    local epochs=()
    [ -z "${EPOCHS:-}" ] || epochs=(--epochs "$EPOCHS")
    plan="$("${PYTHON_CMD[@]}" scripts/paper_hparams.py "$family" ${epochs[@]+"${epochs[@]}"} "$@")" ||
        die_usage "bad NAME (see above)"
    local runs=()
    while IFS= read -r line; do runs+=("$line"); done <<<"$plan"
    echo "Paper row ($family): ${#runs[@]} script call(s)"
    for line in "${runs[@]}"; do
        local words=()
        read -r -a words <<<"$line"
        echo "== bash scripts/$family/$line"
        bash "scripts/$family/${words[0]}" "${words[@]:1}" </dev/null || failed+=$'\n'"  scripts/$family/$line"
    done
    if [ -n "$failed" ]; then
        echo "Failed:$failed" >&2
        return 1
    fi
}
