#!/usr/bin/env bash
# The main job (run by `bash run.sh demo`): build the demo corpus, train the scratch_fbank CTC
# model on its `labeled` split, decode `test` and `test_ood` with fairseq-generate and print
# the WER/CER table.  Re-running resumes: the corpus is reused, training continues from
# checkpoint_last.pt, and nothing is overwritten.
#
#   DATA=data/demo EXP=exp/demo_ctc bash examples/ctc/run_demo.sh [hydra overrides...]
set -euo pipefail
source "$(dirname "$0")/../hydra_quote.sh"
DATA=$(realpath -m "${DATA:-data/demo}")
EXP=$(realpath -m "${EXP:-exp/demo_ctc}")
hq_check "$DATA" "$EXP"
PRESET=${PRESET:-demo}

start=$(date +%s)
python -m data_prep.corpus --preset "$PRESET" --out "$DATA"
fairseq-hydra-train --config-dir examples/ctc --config-name scratch_fbank \
    common.user_dir=sslasr_plugin task.data="$(hq "$DATA")" checkpoint.save_dir="$(hq "$EXP")" \
    hydra.run.dir="$(hq "$EXP/hydra")" "$@"
trained=$(date +%s)
reports=()
for split in test test_ood; do
    fairseq-generate "$DATA" --user-dir sslasr_plugin --task sslasr_audio_ctc \
        --path "$EXP/checkpoint_best.pt" --gen-subset "$split" --scoring wer --post-process letter --beam 1 \
        --max-tokens 4000000 --results-path "$EXP/decode_$split" >/dev/null
    tail -n 1 "$EXP/decode_$split/generate-$split.txt"
    reports+=("$split=$EXP/decode_$split/generate-$split.txt")
done
echo
python -m sslasr_plugin.decoding.report "${reports[@]}" | tee "$EXP/results.md"
end=$(date +%s)
echo
echo "wall time: $((end - start)) s in all, $((trained - start)) s corpus + training, $((end - trained)) s decoding"
