#!/usr/bin/env bash
# The self-supervised family on the demo corpus (built by `bash run.sh demo`): each model is
# pre-trained on `unlabeled` (+ `valid` for validation), CTC fine-tuned on `labeled` and decoded
# greedily on test and test_ood; `scratch` is the same CTC model trained from nothing for the
# same number of CTC updates.  One WER/CER table at the end.  Re-running resumes: finished
# pre-training, labels and fine-tuning are reused, nothing is overwritten.
#
#   PATH=$PWD/.venv/bin:$PATH PRE_UPDATES=300 FT_UPDATES=400 bash examples/ssl/run_demo.sh
#   ARMS="hubert1 hubert2" ...     only some arms (hubert2 needs hubert1's checkpoint)
#   CLUSTERS=100 LAYER=4           HuBERT's k-means size and iteration-2 feature layer
set -euo pipefail
source "$(dirname "$0")/../hydra_quote.sh"
DATA=$(realpath -m "${DATA:-data/demo}")
EXP=$(realpath -m "${EXP:-exp/ssl}")
hq_check "$DATA" "$EXP"
PRE=${PRE_UPDATES:-300}
FT=${FT_UPDATES:-400}
CLUSTERS=${CLUSTERS:-100}
LAYER=${LAYER:-4}
ARMS=${ARMS:-scratch wav2vec2 hubert1 hubert2 cpc wav2vec vq_wav2vec_gumbel vq_wav2vec_kmeans}
mkdir -p "$EXP"

source "$(dirname "$0")/../decode.sh"
train() {  # train CONFIG_DIR CONFIG_NAME OUT [overrides...]
    local dir=$1 name=$2 out=$3
    shift 3
    fairseq-hydra-train --config-dir "$dir" --config-name "$name" common.user_dir=sslasr_plugin \
        task.data="$(hq "$DATA")" checkpoint.save_dir="$(hq "$out")" hydra.run.dir="$(hq "$out/hydra")" "$@"
}
pretrain() {  # pretrain CONFIG_NAME OUT [overrides...]: examples/ssl/CONFIG_NAME.yaml for PRE updates
    local name=$1 out=$2
    shift 2
    train examples/ssl "$name" "$out" "${PRE_ARGS[@]}" "$@"
}
# Pre-training schedule shared by every arm: PRE updates, LR warm-up over the first eighth.
PRE_ARGS=(optimization.max_update="$PRE" lr_scheduler.warmup_updates=$((PRE / 8)) \
          checkpoint.save_interval_updates="$PRE" dataset.validate_interval_updates="$PRE")
# CTC fine-tuning schedule shared by every arm: FT updates, validation every 100.
FT_ARGS=(optimization.max_update="$FT" checkpoint.save_interval_updates=100 dataset.validate_interval_updates=100)
# Pre-trained wav2vec 2.0 / HuBERT encoders fine-tune with the from-scratch model's recipe
# (examples/ctc/scratch_fbank.yaml: LR 1e-3, nothing frozen, mask 0.2), so that only the
# initialization differs; finetune_w2v.yaml's own recipe (LR 5e-4, front end frozen, encoder
# frozen for the first updates) is meant for longer runs: at 400 updates it had not left CTC's
# all-blank phase.  FT_RECIPE=finetune_w2v keeps that recipe.
if [ "${FT_RECIPE:-scratch}" = scratch ]; then
    INIT_ARGS=("optimization.lr=[0.001]" model.freeze_finetune_updates=0 model.feature_grad_mult=1.0 model.mask_prob=0.2)
else
    INIT_ARGS=(model.freeze_finetune_updates=$((FT / 4)))
fi

reports=()
for arm in $ARMS; do
    ft="$EXP/${arm}_ft"
    case "$arm" in
        scratch)
            train examples/ctc scratch_fbank "$ft" "${FT_ARGS[@]}" ;;
        wav2vec2)
            train examples/wav2vec2 pretrain_fbank "$EXP/$arm" "${PRE_ARGS[@]}"
            train examples/ctc finetune_w2v "$ft" "${FT_ARGS[@]}" model.w2v_path="$(hq "$EXP/$arm/checkpoint_last.pt")" \
                "${INIT_ARGS[@]}" ;;
        hubert1|hubert2)
            it=${arm#hubert}
            labels="$EXP/km$it"
            if [ ! -f "$labels/labels.json" ]; then
                if [ "$it" = 1 ]; then
                    python -m data_prep.hubert_labels --data "$DATA" --out "$labels" --features mfcc \
                        --clusters "$CLUSTERS" --no-progress
                else
                    python -m data_prep.hubert_labels --data "$DATA" --out "$labels" --features model \
                        --checkpoint "$EXP/hubert1/checkpoint_last.pt" --layer "$LAYER" --clusters "$CLUSTERS" \
                        --no-progress
                fi
            fi
            pretrain "hubert_iter$it" "$EXP/$arm" task.label_dir="$(hq "$labels")"
            train examples/ctc finetune_w2v "$ft" "${FT_ARGS[@]}" model.w2v_path="$(hq "$EXP/$arm/checkpoint_last.pt")" \
                "${INIT_ARGS[@]}" ;;
        cpc|wav2vec|vq_wav2vec_gumbel|vq_wav2vec_kmeans)
            pretrain "$arm" "$EXP/$arm"
            train examples/ssl finetune_wav2vec1 "$ft" "${FT_ARGS[@]}" \
                model.encoder.frontend_checkpoint="$(hq "$EXP/$arm/checkpoint_last.pt")" ;;
        *) echo "unknown arm $arm" >&2; exit 2 ;;
    esac
    decode "$ft/checkpoint_best.pt" "$ft" "$arm"
done
report "$EXP/results.md"
