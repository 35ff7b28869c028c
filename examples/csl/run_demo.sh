#!/usr/bin/env bash
# CSL against CE-PL on the demo corpus, after `bash run.sh demo` (whose model is both the
# teacher and the supervised-only baseline).  For each arm: pre-train on the teacher's frame
# pseudo-labels of `unlabeled`, fine-tune with CTC on `labeled`
# (examples/ctc/finetune_w2v.yaml), decode test and test_ood; then one WER/CER table.
# Re-running resumes: labels are kept, finished trainings stop at once.
#
#   PATH=$PWD/.venv/bin:$PATH bash examples/csl/run_demo.sh
#   ARMS="csl csl_no_lab csl_batch_negatives ce_pl ce_pl_no_lab" ...   the ablations
#   PRETRAIN_UPDATES=500 FT_UPDATES=1000 ...                          budgets
#   TEACHER=exp/csl_ft/checkpoint_best.pt PL=data/demo_pl_round2 EXP=exp/round2 ...
#                                   iterative PL: the fine-tuned student labels the next round
#
# Arms: csl (LAB on, same-utterance negatives), csl_no_lab (fairseq's length-ordered batches),
# csl_batch_negatives (negatives from the whole batch), ce_pl, ce_pl_no_lab.  Each arm trains
# in EXP/<arm> and EXP/<arm>_ft.
set -euo pipefail
source "$(dirname "$0")/../hydra_quote.sh"
DATA=$(realpath -m "${DATA:-data/demo}")
TEACHER=$(realpath -m "${TEACHER:-exp/demo_ctc/checkpoint_best.pt}")
PL=$(realpath -m "${PL:-data/demo_pl}")
EXP=$(realpath -m "${EXP:-exp}")
hq_check "$DATA" "$TEACHER" "$PL" "$EXP"
PRETRAIN_UPDATES=${PRETRAIN_UPDATES:-500}
FT_UPDATES=${FT_UPDATES:-1000}
ARMS=${ARMS:-csl ce_pl}
[ -f "$TEACHER" ] || { echo "error: no teacher at $TEACHER: run 'bash run.sh demo' first (or set TEACHER)" >&2; exit 2; }
arm_config() {  # ARM -> sets config and overrides; 1 for an unknown arm
    case "$1" in
        csl) config=csl overrides=() ;;
        csl_no_lab) config=csl overrides=("task.label_aware_batching=false") ;;
        csl_batch_negatives) config=csl overrides=("criterion.negatives=batch") ;;
        ce_pl) config=ce_pl overrides=() ;;
        ce_pl_no_lab) config=ce_pl overrides=("task.label_aware_batching=false") ;;
        *) return 1 ;;
    esac
}
for arm in $ARMS; do  # refuse a typo before hours of training
    arm_config "$arm" || { echo "error: unknown arm '$arm' (csl csl_no_lab csl_batch_negatives ce_pl ce_pl_no_lab)" >&2; exit 2; }
done

[ -f "$PL/valid.plab" ] || python -m data_prep.pseudo_labels --teacher "$TEACHER" --data "$DATA" \
    --splits unlabeled valid --out "$PL"
source "$(dirname "$0")/../decode.sh"
reports=()
decode "$TEACHER" "$EXP/supervised_only" supervised_only
for arm in $ARMS; do
    arm_config "$arm"
    fairseq-hydra-train --config-dir examples/csl --config-name "$config" common.user_dir=sslasr_plugin \
        task.data="$(hq "$DATA")" task.label_dir="$(hq "$PL")" checkpoint.save_dir="$(hq "$EXP/$arm")" \
        hydra.run.dir="$(hq "$EXP/$arm/hydra")" optimization.max_update="$PRETRAIN_UPDATES" \
        checkpoint.save_interval_updates="$PRETRAIN_UPDATES" \
        dataset.validate_interval_updates=$(( (PRETRAIN_UPDATES + 1) / 2 )) "${overrides[@]}"
    # the fine-tuning keeps finetune_w2v.yaml's share of frozen-encoder updates (200 of 1000)
    fairseq-hydra-train --config-dir examples/ctc --config-name finetune_w2v common.user_dir=sslasr_plugin \
        task.data="$(hq "$DATA")" checkpoint.save_dir="$(hq "$EXP/${arm}_ft")" hydra.run.dir="$(hq "$EXP/${arm}_ft/hydra")" \
        model.w2v_path="$(hq "$EXP/$arm/checkpoint_last.pt")" optimization.max_update="$FT_UPDATES" \
        model.freeze_finetune_updates=$((FT_UPDATES / 5)) \
        checkpoint.save_interval_updates=$(( (FT_UPDATES + 3) / 4 )) dataset.validate_interval_updates=$(( (FT_UPDATES + 3) / 4 ))
    decode "$EXP/${arm}_ft/checkpoint_best.pt" "$EXP/$arm" "$arm"
done
report "$EXP/csl_results.md"
