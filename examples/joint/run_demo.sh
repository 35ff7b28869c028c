#!/usr/bin/env bash
# Joint masked CPC + CTC against its baselines and ablations on the demo corpus (built by
# `bash run.sh demo`).  Every arm makes the same number of CTC updates (SUP_UPDATES); the
# joint arms add their unsupervised updates on top.  Each arm: train, decode test and
# test_ood with greedy CTC; then one WER/CER table and the arms' learning curves against their CTC
# updates (EXP/joint[_RECIPE]_curves.png, one TSV per arm beside it).  Re-running resumes finished arms at once.
#
#   PATH=$PWD/.venv/bin:$PATH SUP_UPDATES=600 bash examples/joint/run_demo.sh
#   ARMS="joint update_ratio_5" ...     only some arms
#   RECIPE=paper ...                     +recipe=paper in front of every arm (docs/recipes/joint.md)
set -euo pipefail
source "$(dirname "$0")/../hydra_quote.sh"
DATA=$(realpath -m "${DATA:-data/demo}")
EXP=$(realpath -m "${EXP:-exp}")
hq_check "$DATA" "$EXP"
SUP=${SUP_UPDATES:-1000}
ARMS=${ARMS:-supervised_only joint two_stage single_optimizer lr_ratio_4}
RECIPE=${RECIPE:-}

source "$(dirname "$0")/../decode.sh"
reports=()
curves=()
for arm in $ARMS; do
    case "$arm" in
        supervised_only) overrides=("+variant=supervised_only" "optimization.max_update=$SUP") ;;
        joint) overrides=("optimization.max_update=$((2 * SUP))") ;;
        two_stage) overrides=("+variant=two_stage" "task.pretrain_updates=$SUP" "optimization.max_update=$((2 * SUP))") ;;
        single_optimizer|lr_ratio_4) overrides=("+variant=$arm" "optimization.max_update=$((2 * SUP))") ;;
        update_ratio_5) overrides=("+variant=update_ratio_5" "optimization.max_update=$((6 * SUP))") ;;
        *) echo "unknown arm $arm" >&2; exit 2 ;;
    esac
    out="$EXP/joint${RECIPE:+_$RECIPE}_$arm"
    fairseq-hydra-train --config-dir examples/joint --config-name joint common.user_dir=sslasr_plugin \
        task.data="$(hq "$DATA")" checkpoint.save_dir="$(hq "$out")" hydra.run.dir="$(hq "$out/hydra")" \
        dataset.validate_interval_updates=250 checkpoint.save_interval_updates=250 ${RECIPE:+"+recipe=$RECIPE"} "${overrides[@]}"
    decode "$out/checkpoint_best.pt" "$out" "$arm"
    curves+=("$arm=$out")
done
report "$EXP/joint${RECIPE:+_$RECIPE}_results.md"
# valid letter error against CTC updates, and the losses against their own updates (each arm its schedule)
python examples/joint/curves.py --out "$EXP/joint${RECIPE:+_$RECIPE}_curves.png" \
    --tsv-dir "$EXP/joint${RECIPE:+_$RECIPE}_curves" "${curves[@]}"
