#!/usr/bin/env bash
# The low-resource benchmark (docs/results/lowres.md): what unlabeled audio buys against a fully
# trained, compute-matched supervised baseline.  Numbered stages, icefall style: a finished stage
# is skipped, an interrupted one resumes from its checkpoint_last.pt.
#
#   PATH=$PWD/.venv/bin:$PATH bash examples/lowres/run.sh --stage 0 --stop-stage 9
#   bash examples/lowres/run.sh --stage 2 --stop-stage 2 --labeled 1h      # the 1 h sweep only
#
#   0  corpus (preset lowres), the oracle manifest (labeled + unlabeled with true transcripts) and
#      the n-gram LMs of data_prep.lm (for stage 8's pseudo-labels)
#   1  oracle ceiling: supervised CTC on `oracle` (what perfect pseudo-labels would reach)
#   2  baseline sweep on the labeled subset (dropout x masking), each trained to a valid-CER plateau
#   3  the best sweep point with the other seeds
#   4  compute-matched control per seed: supervised continuation of that seed's baseline
#   5  slimIPL with hard labels from each seed's baseline (same total updates as the control)
#   6  slimIPL with hard labels adapting to `unlabeled_ood` (held-out voices), first seed
#   7  soft labels regularised by CTC on the greedy transcript (0.5/0.5), --arm-seeds
#   8  slimIPL with LM-decoded hard labels (word LM + lexicon, weights tuned on valid), --arm-seeds
#   9  rebuild the results page and plots from the runs' logs and decodes
#
# Every run selects its checkpoint on valid CER and is decoded (greedy CTC) on test and test_ood;
# its directory gets DONE when trained and decoded.  Stage 3 carries each seed's best baseline
# (model only, fp16, ~10 MB) into the page's store (init.pt beside its figures): on a machine
# where exp/ is gone, stages 3-8 restore it from there instead of training it again, and stage 2
# need not run again (the best sweep point is read from the kept validation curves).  Options (defaults below) scale the budgets;
# the tests use tiny ones.  Stages 7-8 run the seeds of --arm-seeds (the first seed by default):
# an arm gets the other seeds once it beats its control on the first.
set -euo pipefail
cd "$(dirname "$0")/../.."
source examples/hydra_quote.sh

stage=0; stop_stage=9; preset=lowres; labeled=10min; seeds="1 2 3"; arm_seeds=
data=data/lowres; exp=exp/lowres; page=docs/results/lowres.md
oracle_updates=5000; base_updates=4000; patience=6; pl_updates=3000; interval=250
sweep="d0.1_m0.2 d0.2_m0.4 d0.3_m0.6"; max_tokens=640000; decode_splits="test test_ood"
while [ $# -gt 0 ]; do
    case "$1" in
        --stage) stage=$2 ;; --stop-stage) stop_stage=$2 ;; --preset) preset=$2 ;; --labeled) labeled=$2 ;;
        --seeds) seeds=$2 ;; --data) data=$2 ;; --exp) exp=$2 ;; --page) page=$2 ;; --sweep) sweep=$2 ;;
        --oracle-updates) oracle_updates=$2 ;; --base-updates) base_updates=$2 ;; --patience) patience=$2 ;;
        --pl-updates) pl_updates=$2 ;; --interval) interval=$2 ;; --max-tokens) max_tokens=$2 ;;
        --decode-splits) decode_splits=$2 ;; --arm-seeds) arm_seeds=$2 ;;
        *) echo "error: unknown option $1 (see the head of $0)" >&2; exit 2 ;;
    esac
    shift 2
done
data=$(realpath -m "$data"); exp=$(realpath -m "$exp")
hq_check "$data" "$exp"
store=$(realpath -m "${page%.md}")  # where stage 9 keeps every figure's files (and stage 3 the baselines' weights)
subset=labeled_$labeled
first_seed=${seeds%% *}
arm_seeds=${arm_seeds:-$first_seed}
log() { echo "$(date +%H:%M:%S) [stage $1] $2"; }

# point_args POINT: hydra overrides of a sweep point "d<dropout>_m<mask_prob>" into the array `sweep_args`.
point_args() {
    local d=${1%_m*} m=${1#*_m}
    d=${d#d}
    sweep_args=("model.dropout=$d" "model.attention_dropout=$d" "model.final_dropout=$d" "model.mask_prob=$m")
}

decode_run() {  # OUT: greedy CTC decodes of the best checkpoint, per utterance, kept
    local split
    for split in $decode_splits; do
        [ -s "$1/decode_$split/generate-$split.txt" ] && continue
        rm -rf "$1/decode_$split.partial"  # a decode counts once whole: a killed one is done again
        fairseq-generate "$data" --user-dir sslasr_plugin --task sslasr_audio_ctc --path "$1/checkpoint_best.pt" \
            --gen-subset "$split" --scoring wer --post-process letter --beam 1 --max-tokens 4000000 \
            --results-path "$1/decode_$split.partial" >/dev/null
        rm -rf "$1/decode_$split"
        mv "$1/decode_$split.partial" "$1/decode_$split"
    done
}

# restore STAGE OUT: a run trained on another machine (no DONE, no checkpoint here) whose weights
# stage 3 carried into the store gets them back as OUT/checkpoint_best.pt; its figures stay there.
restore() {
    local carried="$store/${2#"$exp"/}/init.pt"
    if [ ! -f "$2/DONE" ] && [ ! -f "$2/RESTORED" ] && [ ! -f "$2/checkpoint_last.pt" ] && [ -s "$carried" ]; then
        mkdir -p "$2"
        cp "$carried" "$2/checkpoint_best.pt"
        touch "$2/RESTORED"
        log "$1" "${2#"$exp"/}: restored from $carried"
    fi
}

# run STAGE OUT CONFIG_DIR CONFIG_NAME OVERRIDES...: train (resuming from OUT/checkpoint_last.pt)
# and decode, unless OUT is DONE.  Every run validates, checkpoints and selects the same way.
run() {
    local st=$1 out=$2 dir=$3 name=$4
    shift 4
    if [ -f "$out/DONE" ]; then log "$st" "${out#"$exp"/}: done, skipped"; return; fi
    restore "$st" "$out"
    if [ -f "$out/RESTORED" ]; then log "$st" "${out#"$exp"/}: restored, skipped"; return; fi
    log "$st" "${out#"$exp"/}: training"
    mkdir -p "$out"
    fairseq-hydra-train --config-dir "$dir" --config-name "$name" common.user_dir=sslasr_plugin \
        "task.data=$(hq "$data")" "checkpoint.save_dir=$(hq "$out")" "hydra.run.dir=$(hq "$out/hydra")" \
        "common.tensorboard_logdir=$(hq "$out/tensorboard")" common.log_interval=50 \
        "dataset.max_tokens=$max_tokens" "dataset.validate_interval_updates=$interval" \
        "checkpoint.save_interval_updates=$interval" checkpoint.keep_interval_updates=1 \
        checkpoint.best_checkpoint_metric=uer "$@" >> "$out/train.out" 2>&1 \
        || { log "$st" "${out#"$exp"/}: training failed, see $out/train.out"; exit 1; }
    decode_run "$out"
    touch "$out/DONE"
    log "$st" "${out#"$exp"/}: done"
}

baseline() {  # STAGE POINT SEED: supervised on the labeled subset until valid CER stops improving
    point_args "$2"
    run "$1" "$exp/$subset/baseline_$2_s$3" examples/ctc scratch_fbank "dataset.train_subset=$subset" \
        "optimization.max_update=$base_updates" "checkpoint.patience=$patience" "common.seed=$3" "${sweep_args[@]}"
}

best_point() {  # the sweep point whose first-seed run reached the lowest valid CER
    python examples/lowres/local.py best --exp "$exp/$subset" --store "$store/$subset" --seed "$first_seed" $sweep
}

# pl_args STAGE INIT: continuing from a plateaued baseline (restored from the store when it was
# trained on another machine); a PL arm and its control share these overrides.
pl_args() {
    restore "$1" "$(dirname "$2")"
    if [ ! -s "$2" ]; then
        echo "error: $2 does not exist: run stage 3 for this seed first (or bring back the run's directory)" >&2
        exit 1
    fi
    shift
    point_args "$(best_point)"
    pl=("checkpoint.finetune_from_model=$(hq "$1")" task.warmup_updates=0 "dataset.train_subset=$subset"
        "optimization.max_update=$pl_updates" "optimization.lr=[0.0003]" "${sweep_args[@]}")
}
# The PL arms' own settings: 1 labeled : 4 pseudo-labeled updates through a cache of 100 batches
# relabeled with p = 0.3, so that most unlabeled utterances get labeled at least once.
slimipl=(task.sup_updates=1 task.unsup_updates=4 task.cache_size=100 task.cache_replace_prob=0.3)

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
    log 0 "corpus $preset -> $data"
    python -m data_prep.corpus --preset "$preset" --out "$data" --no-progress
    python examples/lowres/local.py oracle-manifest --data "$data"
    [ -s "$data/lm/lm.json" ] || python -m data_prep.lm --out "$data/lm"
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
    run 1 "$exp/oracle_s$first_seed" examples/ctc scratch_fbank dataset.train_subset=oracle \
        "optimization.max_update=$oracle_updates" "checkpoint.patience=$patience" "common.seed=$first_seed"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
    for point in $sweep; do
        baseline 2 "$point" "$first_seed"
    done
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
    best=$(best_point)
    log 3 "best sweep point on valid: $best"
    for seed in $seeds; do
        baseline 3 "$best" "$seed"
        run_dir="$exp/$subset/baseline_${best}_s$seed"
        if [ ! -s "$store/$subset/baseline_${best}_s$seed/init.pt" ]; then
            python examples/lowres/local.py carry --run "$run_dir" --to "$store/$subset/baseline_${best}_s$seed/init.pt"
            log 3 "carried $subset/baseline_${best}_s$seed's weights to $store"
        fi
    done
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
    best=$(best_point)
    for seed in $seeds; do
        pl_args 4 "$exp/$subset/baseline_${best}_s$seed/checkpoint_best.pt"
        run 4 "$exp/$subset/control_s$seed" examples/slimipl slimipl +variant=supervised_only \
            "common.seed=$seed" "${pl[@]}"
    done
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
    best=$(best_point)
    for seed in $seeds; do
        pl_args 5 "$exp/$subset/baseline_${best}_s$seed/checkpoint_best.pt"
        run 5 "$exp/$subset/slimipl_hard_s$seed" examples/slimipl slimipl "common.seed=$seed" "${pl[@]}" \
            "${slimipl[@]}"
    done
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
    pl_args 6 "$exp/$subset/baseline_$(best_point)_s$first_seed/checkpoint_best.pt"
    run 6 "$exp/$subset/slimipl_hard_ood_s$first_seed" examples/slimipl slimipl "common.seed=$first_seed" \
        "${pl[@]}" "${slimipl[@]}" task.unlabeled_subsets=unlabeled_ood
fi

if [ "$stage" -le 7 ] && [ "$stop_stage" -ge 7 ]; then
    for seed in $arm_seeds; do
        pl_args 7 "$exp/$subset/baseline_$(best_point)_s$seed/checkpoint_best.pt"
        run 7 "$exp/$subset/soft_ctc_mix_s$seed" examples/slimipl slimipl +variant=soft_ctc_mix \
            "common.seed=$seed" "${pl[@]}" "${slimipl[@]}"
    done
fi

if [ "$stage" -le 8 ] && [ "$stop_stage" -ge 8 ]; then
    for seed in $arm_seeds; do
        init="$exp/$subset/baseline_$(best_point)_s$seed/checkpoint_best.pt"
        tuned="$exp/$subset/tune_lm_s$seed"
        restore 8 "$(dirname "$init")"
        if [ ! -s "$tuned/best.json" ]; then
            log 8 "LM weights for seed $seed's baseline, tuned on valid"
            mkdir -p "$tuned"
            python -m sslasr_plugin.decoding.tune_lm "$data" --path "$init" --kenlm-model "$data/lm/word.bin" \
                --lexicon "$data/lm/lexicon.txt" --lm-weights 1 2 3 --scores -1 0 1 2 \
                --best-json "$tuned/best.json" > "$tuned/grid.md"
        fi
        read -r lm_weight word_score < <(python -c 'import json, sys; b = json.load(open(sys.argv[1]))
print(b["lm_weight"], b["word_score"])' "$tuned/best.json")
        pl_args 8 "$init"
        run 8 "$exp/$subset/slimipl_lm_s$seed" examples/slimipl slimipl "common.seed=$seed" "${pl[@]}" \
            "${slimipl[@]}" task.pl_decoder=lm "task.kenlm_model=$(hq "$data/lm/word.bin")" \
            "task.lexicon=$(hq "$data/lm/lexicon.txt")" "task.pl_lm_weight=$lm_weight" "task.word_score=$word_score"
    done
fi

if [ "$stage" -le 9 ] && [ "$stop_stage" -ge 9 ]; then
    log 9 "results page $page"
    python examples/lowres/local.py rebuild --exp "$exp" --page "$page"
fi
