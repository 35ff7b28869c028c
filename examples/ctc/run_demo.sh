#!/usr/bin/env bash
# The main job (run by `bash run.sh demo`): build the demo corpus, train the scratch_fbank CTC
# model on its `labeled` split, decode `test` and `test_ood` with fairseq-generate and print
# the WER/CER table: greedy, and beam search with n-gram LMs (data_prep.lm: a word LM with a
# lexicon, a letter LM lexicon-free; LM weight and word score tuned on valid by
# sslasr_plugin.decoding.tune_lm).  Re-running resumes: the corpus and LMs are reused, training
# continues from checkpoint_last.pt, and nothing is overwritten.  LM_DECODE=0 decodes greedily only.
#
#   DATA=data/demo EXP=exp/demo_ctc LM=data/lm bash examples/ctc/run_demo.sh [hydra overrides...]
set -euo pipefail
source "$(dirname "$0")/../hydra_quote.sh"
DATA=$(realpath -m "${DATA:-data/demo}")
EXP=$(realpath -m "${EXP:-exp/demo_ctc}")
LM=$(realpath -m "${LM:-data/lm}")
hq_check "$DATA" "$EXP"
PRESET=${PRESET:-demo}
LM_DECODE=${LM_DECODE:-1}

start=$(date +%s)
python -m data_prep.corpus --preset "$PRESET" --out "$DATA"
# A finished run is not resumed: fairseq would make one more update and replace the best checkpoint.
if ! grep -qs "done training" "$EXP/hydra/hydra_train.log"; then
    fairseq-hydra-train --config-dir examples/ctc --config-name scratch_fbank \
        common.user_dir=sslasr_plugin task.data="$(hq "$DATA")" checkpoint.save_dir="$(hq "$EXP")" \
        hydra.run.dir="$(hq "$EXP/hydra")" "$@"
fi
trained=$(date +%s)
reports=()
for split in test test_ood; do
    fairseq-generate "$DATA" --user-dir sslasr_plugin --task sslasr_audio_ctc \
        --path "$EXP/checkpoint_best.pt" --gen-subset "$split" --scoring wer --post-process letter --beam 1 \
        --max-tokens 4000000 --results-path "$EXP/decode_$split" >/dev/null
    tail -n 1 "$EXP/decode_$split/generate-$split.txt"
    reports+=("$split greedy=$EXP/decode_$split/generate-$split.txt")
done
decoded=$(date +%s)
if [ "$LM_DECODE" = 1 ]; then
    [ -f "$LM/lm.json" ] || python -m data_prep.lm --out "$LM"
    for kind in word letter; do
        lexicon=(); [ "$kind" = word ] && lexicon=(--lexicon "$LM/lexicon.txt")
        python -m sslasr_plugin.decoding.tune_lm "$DATA" --path "$EXP/checkpoint_best.pt" --beam 50 \
            --kenlm-model "$LM/$kind.bin" "${lexicon[@]}" --lm-weights 0.5 1 2 --scores -1 0 1 \
            --decode test test_ood --results-path "$EXP/decode_lm_$kind" | tee "$EXP/tune_lm_$kind.md"
        label=$([ "$kind" = word ] && echo "word LM + lexicon" || echo "letter LM, lexicon-free")
        for split in test test_ood; do
            reports+=("$split $label=$EXP/decode_lm_$kind/$split/generate-$split.txt")
        done
    done
fi
echo
python -m sslasr_plugin.decoding.report "${reports[@]}" | tee "$EXP/results.md"
end=$(date +%s)
echo
echo "wall time: $((end - start)) s in all, $((trained - start)) s corpus + training," \
    "$((decoded - trained)) s greedy decoding, $((end - decoded)) s LM building, tuning and decoding"
