#!/usr/bin/env bash
# Continuous pseudo-labeling on the demo corpus, every arm starting from the main job's
# supervised model (`bash run.sh demo` -> exp/demo_ctc/checkpoint_best.pt), which stands in
# for slimIPL's supervised warm-up.  Every arm then makes UPDATES updates: supervised-only
# continues on `labeled`; the others alternate 1 labeled : 1 pseudo-labeled update through a
# cache of CACHE batches.  Each arm is decoded on test and test_ood (greedy CTC); then one
# WER/CER table and a plot of the pseudo-label curves.  Finished arms are not retrained.
#
#   PATH=$PWD/.venv/bin:$PATH UPDATES=400 bash examples/slimipl/run_demo.sh [hydra overrides...]
#   ARMS="hard soft" ...     only some arms
#   TAG=name ...             output under exp/slimipl_<arm>_<name>, for runs with other overrides
set -euo pipefail
source "$(dirname "$0")/../hydra_quote.sh"
DATA=$(realpath -m "${DATA:-data/demo}")
EXP=$(realpath -m "${EXP:-exp}")
INIT=$(realpath -m "${INIT:-exp/demo_ctc/checkpoint_best.pt}")
hq_check "$DATA" "$EXP" "$INIT"
UPDATES=${UPDATES:-400}
CACHE=${CACHE:-50}
ARMS=${ARMS:-supervised_only hard soft soft_ctc_mix soft_blank}
[ -f "$INIT" ] || { echo "error: no supervised model at $INIT: run 'bash run.sh demo' first (or set INIT)" >&2; exit 2; }

source "$(dirname "$0")/../decode.sh"
reports=()
logs=()
for arm in $ARMS; do
    case "$arm" in
        hard) overrides=() ;;
        supervised_only|ema|soft|soft_ctc_mix|soft_blank|soft_temperature|soft_entropy|soft_sampled) overrides=("+variant=$arm") ;;
        *) echo "unknown arm $arm" >&2; exit 2 ;;
    esac
    out="$EXP/slimipl_$arm${TAG:+_$TAG}"
    if [ ! -f "$out/checkpoint_last.pt" ] || ! grep -q "done training" "$out/hydra/hydra_train.log" 2>/dev/null; then
        fairseq-hydra-train --config-dir examples/slimipl --config-name slimipl common.user_dir=sslasr_plugin \
            task.data="$(hq "$DATA")" checkpoint.save_dir="$(hq "$out")" hydra.run.dir="$(hq "$out/hydra")" \
            checkpoint.finetune_from_model="$(hq "$INIT")" task.warmup_updates=0 task.cache_size="$CACHE" \
            optimization.max_update="$UPDATES" optimization.lr=[0.0003] common.log_interval=20 \
            dataset.validate_interval_updates=100 checkpoint.save_interval_updates=100 \
            common.tensorboard_logdir="$(hq "$out/tensorboard")" "${overrides[@]}" "$@"
    fi
    decode "$out/checkpoint_best.pt" "$out" "$arm"
    logs+=("$arm=$out/hydra/hydra_train.log")
done
report "$EXP/slimipl${TAG:+_$TAG}_results.md"
python examples/slimipl/plot_curves.py --out "$EXP/slimipl${TAG:+_$TAG}_curves.png" "${logs[@]}"
