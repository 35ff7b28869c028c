#!/usr/bin/env bash
# CSL against CE-PL on the demo corpus, after `bash run.sh demo` (whose model is both the
# teacher and the supervised-only baseline).  For each method: pre-train on the teacher's frame
# pseudo-labels of `unlabeled`, fine-tune with CTC on `labeled`, decode test and test_ood.
# Re-running resumes: labels are kept, finished trainings stop at once.
#
#   PATH=$PWD/.venv/bin:$PATH bash examples/csl/run_demo.sh
set -euo pipefail
source "$(dirname "$0")/../hydra_quote.sh"
DATA=$(realpath -m "${DATA:-data/demo}")
TEACHER=$(realpath -m "${TEACHER:-exp/demo_ctc/checkpoint_best.pt}")
PL=$(realpath -m "${PL:-data/demo_pl}")
EXP=$(realpath -m "${EXP:-exp}")
PRETRAIN_UPDATES=${PRETRAIN_UPDATES:-500}

[ -f "$PL/valid.plab" ] || python -m data_prep.pseudo_labels --teacher "$TEACHER" --data "$DATA" \
    --splits unlabeled valid --out "$PL"
source "$(dirname "$0")/../decode.sh"
reports=()
decode "$TEACHER" "$EXP/supervised_only" supervised_only
for method in csl ce_pl; do
    fairseq-hydra-train --config-dir examples/csl --config-name "$method" common.user_dir=sslasr_plugin \
        task.data="$(hq "$DATA")" task.label_dir="$(hq "$PL")" checkpoint.save_dir="$(hq "$EXP/$method")" \
        hydra.run.dir="$(hq "$EXP/$method/hydra")" optimization.max_update="$PRETRAIN_UPDATES" \
        dataset.validate_interval_updates=250
    fairseq-hydra-train --config-dir examples/ctc --config-name finetune_w2v common.user_dir=sslasr_plugin \
        task.data="$(hq "$DATA")" checkpoint.save_dir="$(hq "$EXP/${method}_ft")" hydra.run.dir="$(hq "$EXP/${method}_ft/hydra")" \
        model.w2v_path="$(hq "$EXP/$method/checkpoint_last.pt")"
    decode "$EXP/${method}_ft/checkpoint_best.pt" "$EXP/$method" "$method"
done
python -m sslasr_plugin.decoding.report "${reports[@]}" | tee "$EXP/csl_results.md"
