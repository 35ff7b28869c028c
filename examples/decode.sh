# Sourced by the run_demo.sh scripts.  decode CHECKPOINT OUT_DIR NAME: greedy CTC decoding of
# test and test_ood of $DATA into OUT_DIR/decode_<split>/, each output added to the `reports`
# array as NAME/<split>=<file> for sslasr_plugin.decoding.report.
decode() {
    local split
    for split in test test_ood; do
        fairseq-generate "$DATA" --user-dir sslasr_plugin --task sslasr_audio_ctc --path "$1" \
            --gen-subset "$split" --scoring wer --post-process letter --beam 1 --max-tokens 4000000 \
            --results-path "$2/decode_$split" >/dev/null
        reports+=("$3/$split=$2/decode_$split/generate-$split.txt")
    done
}

# report TABLE: one WER/CER table of every decode in `reports`, written to TABLE too; where the
# supervised_only arm was decoded, every row also gets its paired difference from it (95% interval).
report() {
    local against=()
    [[ " ${reports[*]} " == *" supervised_only/"* ]] && against=(--against supervised_only)
    python -m sslasr_plugin.decoding.report "${against[@]}" "${reports[@]}" | tee "$1"
}
