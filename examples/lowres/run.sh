#!/usr/bin/env bash
# The low-resource benchmark (docs/results/lowres.md): what unlabeled audio buys against a fully
# trained, compute-matched supervised baseline.  Numbered stages, icefall style: a finished stage
# is skipped, an interrupted one resumes from its checkpoint_last.pt.
#
#   PATH=$PWD/.venv/bin:$PATH bash examples/lowres/run.sh --stage 0 --stop-stage 11
#   bash examples/lowres/run.sh --stage 2 --stop-stage 2 --labeled 1h      # the 1 h sweep only
#
#   0  corpus (preset lowres), the oracle manifest (labeled + unlabeled with true transcripts) and
#      the n-gram LMs of data_prep.lm (for stage 8's pseudo-labels)
#   1  oracle ceiling: supervised CTC on `oracle` (what perfect pseudo-labels would reach)
#   2  baseline sweep on the labeled subset (dropout x masking), each trained to a valid-CER plateau
#   3  the best sweep point with the other seeds
#   4  compute-matched control per seed: supervised continuation of that seed's baseline
#   5  slimIPL with hard labels from each seed's baseline (same total updates as the control); and,
#      first seed, its ceiling: the same run trained on the true transcripts (task.pl_decoder=oracle)
#   6  slimIPL with hard labels adapting to `unlabeled_ood` (held-out voices), first seed, and its
#      ceiling on the true transcripts; soft labels + CTC mix (stage 7's arm) on `unlabeled` and
#      `unlabeled_ood` together; and, per --ood-teachers (none by default) and --arm-seeds, the same
#      slimIPL run adapting to `unlabeled_ood` on fixed labels, another model's greedy labels of it
#      (task.pl_decoder=file; local.py labels-file writes them into --data as
#      unlabeled_ood.pl_<teacher>_s<seed>.ltr, label-quality measures them): `baseline` (the seed's),
#      a stage-10 joint arm of the seed (`joint`, `joint_both`, `joint_ood`, `joint_mix`: its
#      adaptation without labels as the teacher), or, as measurements of how good labels must be
#      (not arms: they learned from the true transcripts of `unlabeled`), `oracle` (stage 1's model)
#      and `slimipl_oracle` (stage 5's ceiling run of the seed), and `truth<N>`: the baseline's
#      labels with the true transcripts of `unlabeled_ood` on N% of the rows (drawn by the seed; a
#      better teacher with the baseline's kind of errors, local.py labels-cer measures them); runs
#      slimipl_fixed_ood_<teacher>_s<seed>
#   7  the PL arms of --pl-arms, per --arm-seeds, each from that seed's baseline with the control's
#      schedule: soft_ctc_mix (the default), soft labels regularised by CTC on the greedy transcript
#      (0.5/0.5); and slimIPL with hard labels from another teacher or at another share:
#      slimipl_ema, labels by an EMA of the model (decay 0.999, +variant=ema); slimipl_frozen, labels
#      by the starting baseline throughout (the same EMA at decay 1: it never moves, so the labels
#      cannot drift as the model does); slimipl_1to1, 1 labeled : 1 pseudo-labeled update
#   8  slimIPL with LM-decoded hard labels (word LM + lexicon, weights tuned on valid CER), --arm-seeds;
#      and adapting to `unlabeled_ood`, first seed
#   9  CSL's frame teacher per --arm-seeds: the labeled subset aligned by that seed's baseline
#      (data_prep.align: context-dependent letter classes, --classes), a frame cross-entropy model
#      trained on them from the baseline's encoder (examples/csl/teacher.yaml), and its frame
#      labels of `unlabeled` and valid (data_prep.pseudo_labels)
#  10  pre-training from scratch then CTC fine-tuning on the labeled subset
#      (examples/ctc/finetune_w2v.yaml with the baseline's dropout and masking), --arm-seeds:
#      CSL and CE-PL on stage 9's frame labels of `unlabeled` (examples/csl/csl.yaml, ce_pl.yaml),
#      and wav2vec 2.0 (examples/wav2vec2/pretrain_fbank.yaml, no labels) on `unlabeled`, and on
#      `unlabeled` + `unlabeled_ood` (manifest `unlabeled_both`, made in --data); HuBERT's first
#      iteration (examples/ssl/hubert_iter1.yaml) on `unlabeled`, predicting k-means clusters
#      (--km-clusters, 100 as the paper's) of its MFCCs (data_prep.hubert_labels, k-means learned on
#      `unlabeled`), its LR warmed up over the paper's 8% of the updates; pre-training plus
#      fine-tuning updates equal the baseline's budget plus the control's by default; and joint
#      masked CPC + CTC from scratch (examples/joint/joint.yaml, its 1:1 updates and LR ratio: the
#      paper's 20:1 LR ratio trained CTC too slowly at this size, docs/results/joint.md) on
#      `unlabeled` + the labeled subset, with the same total updates and the baseline's dropout and
#      masking; `joint_both`, the same with `unlabeled_ood` in its contrastive stream too (the
#      held-out voices' audio without their labels); `joint_ood`, the same with `unlabeled_ood` in
#      place of `unlabeled` there (the held-out voices' audio and the labeled subset's only);
#      `joint_mix`, both, `unlabeled_ood` named as many times as it takes to weigh about as much
#      audio as `unlabeled` (local.py weighed-subsets); and, as the ceiling of CSL and CE-PL,
#      `csl_oracle` and `ce_pl_oracle`: the same two on frame labels from the true transcripts of `unlabeled`, aligned by the seed's baseline into
#      stage 9's classes (data_prep.align --ctc with --units: labelled in them, nothing fitted), no teacher;
#      --pretrain-arms (also --frame-arms) picks them: csl ce_pl w2v2 w2v2_both hubert joint
#      joint_both joint_ood joint_mix csl_oracle ce_pl_oracle (the last five not by default), so that two processes can
#      run two side by side
#  11  rebuild the results page and plots from the runs' logs and decodes
#
# Every run selects its checkpoint on valid CER and is decoded (greedy CTC) on test and test_ood;
# its directory gets DONE when trained and decoded (a teacher or a pre-training, which is not
# decoded, gets TRAINED).  A run that is not in exp/ but whose figures stage 11 kept in the page's
# store (trained on another machine) is not trained again.  Stage 3 carries each seed's best baseline
# (model only, fp16, ~10 MB) into the page's store (init.pt beside its figures): on a machine
# where exp/ is gone, stages 3-10 restore it from there instead of training it again, and stage 2
# need not run again (the best sweep point is read from the kept validation curves).  Options (defaults below) scale the budgets;
# the tests use tiny ones.  Stages 7-10 run the seeds of --arm-seeds (the first seed by default):
# an arm gets the other seeds once it beats its control on the first.  Runs after stage 3 start from
# the best sweep point's baselines, and their names do not say which: when a new sweep point wins,
# stages 4-10 refuse a run of the old one (here or kept in the store), and a new arm whose seed's
# control is of the old one, and name the --sweep that goes on with it.
set -euo pipefail
cd "$(dirname "$0")/../.."
source examples/hydra_quote.sh

stage=0; stop_stage=11; preset=lowres; labeled=10min; seeds="1 2 3"; arm_seeds=
data=data/lowres; exp=exp/lowres; page=docs/results/lowres.md
oracle_updates=5000; base_updates=4000; patience=6; pl_updates=3000; interval=250
sweep="d0.1_m0.2 d0.2_m0.4 d0.3_m0.6"; max_tokens=640000; decode_splits="test test_ood"
teacher_updates=1000; pretrain_updates=4000; ft_updates=3000; classes=500; min_frames=30; km_clusters=100
frame_arms="csl ce_pl w2v2 w2v2_both hubert joint"
pl_arms=soft_ctc_mix; ood_teachers=
while [ $# -gt 0 ]; do
    case "$1" in
        --stage) stage=$2 ;; --stop-stage) stop_stage=$2 ;; --preset) preset=$2 ;; --labeled) labeled=$2 ;;
        --seeds) seeds=$2 ;; --data) data=$2 ;; --exp) exp=$2 ;; --page) page=$2 ;; --sweep) sweep=$2 ;;
        --oracle-updates) oracle_updates=$2 ;; --base-updates) base_updates=$2 ;; --patience) patience=$2 ;;
        --pl-updates) pl_updates=$2 ;; --interval) interval=$2 ;; --max-tokens) max_tokens=$2 ;;
        --decode-splits) decode_splits=$2 ;; --arm-seeds) arm_seeds=$2 ;;
        --teacher-updates) teacher_updates=$2 ;; --pretrain-updates) pretrain_updates=$2 ;;
        --ft-updates) ft_updates=$2 ;; --classes) classes=$2 ;; --min-frames) min_frames=$2 ;;
        --pretrain-arms|--frame-arms) frame_arms=$2 ;; --km-clusters) km_clusters=$2 ;;
        --pl-arms) pl_arms=$2 ;; --ood-teachers) ood_teachers=$2 ;;
        *) echo "error: unknown option $1 (see the head of $0)" >&2; exit 2 ;;
    esac
    shift 2
done
for arm in $pl_arms; do
    case "$arm" in soft_ctc_mix|slimipl_ema|slimipl_frozen|slimipl_1to1) ;;
        *) echo "error: --pl-arms takes soft_ctc_mix, slimipl_ema, slimipl_frozen and slimipl_1to1, not '$arm'" >&2
           exit 2 ;; esac
done
for teacher in $ood_teachers; do
    case "$teacher" in baseline|oracle|slimipl_oracle|joint|joint_both|joint_ood|joint_mix|truth[1-9]|truth[1-9][0-9]) ;;
        *) echo "error: --ood-teachers takes baseline, oracle, slimipl_oracle, joint, joint_both, joint_ood, joint_mix and truth<N> (N = 1 to 99), not '$teacher'" >&2
           exit 2 ;;
    esac
done
for arm in $frame_arms; do
    case "$arm" in csl|ce_pl|w2v2|w2v2_both|hubert|joint|joint_both|joint_ood|joint_mix|csl_oracle|ce_pl_oracle) ;;
        *) echo "error: --pretrain-arms takes csl, ce_pl, w2v2, w2v2_both, hubert, joint, joint_both, joint_ood, joint_mix, csl_oracle and ce_pl_oracle, not '$arm'" >&2
           exit 2 ;; esac
done
data=$(realpath -m "$data"); exp=$(realpath -m "$exp")
hq_check "$data" "$exp"
store=$(realpath -m "${page%.md}")  # where stage 11 keeps every figure's files (and stage 3 the baselines' weights)
subset=labeled_$labeled
first_seed=${seeds%% *}
arm_seeds=${arm_seeds:-$first_seed}
log() { echo "$(date +%H:%M:%S) [stage $1] $2"; }

# point_args POINT: hydra overrides of a sweep point "d<dropout>_m<mask_prob>" into the array
# `sweep_args`, and `point`, the point the runs made next belong to (none for the oracle).
point=
point_args() {
    point=$1
    local d=${1%_m*} m=${1#*_m}
    d=${d#d}
    sweep_args=("model.dropout=$d" "model.attention_dropout=$d" "model.final_dropout=$d" "model.mask_prob=$m")
}

# same_point STAGE OUT: refuses OUT when it started from another sweep point than `point`: the
# names of the runs after stage 3 do not say which (local.py check-point; its message says what to do).
same_point() {
    [ -z "$point" ] || python examples/lowres/local.py check-point --run "$2" --store-run "$store/${2#"$exp"/}" \
        --point "$point" --sweep "$sweep" || { log "$1" "${2#"$exp"/}: refused"; exit 1; }
}

# greedy_decode MODEL SPLIT OUT: fairseq-generate's greedy CTC decode of SPLIT by MODEL into OUT
# (generate-SPLIT.txt, per utterance), its log beside it (generate.log); a decode counts once
# whole: a killed one is done again, a failed one shows its log's end.
greedy_decode() {
    rm -rf "$3.partial"
    mkdir -p "$3.partial"
    if ! fairseq-generate "$data" --user-dir sslasr_plugin --task sslasr_audio_ctc --path "$1" \
            --gen-subset "$2" --scoring wer --post-process letter --beam 1 --max-tokens 4000000 \
            --results-path "$3.partial" >/dev/null 2>"$3.partial/generate.log"; then
        tail -n 20 "$3.partial/generate.log" >&2
        echo "error: decoding $2 with $1 failed (the whole log: $3.partial/generate.log)" >&2
        exit 1
    fi
    rm -rf "$3"
    mv "$3.partial" "$3"
}

decode_run() {  # OUT: greedy CTC decodes of the best checkpoint, per utterance, kept
    local split
    for split in $decode_splits; do
        [ -s "$1/decode_$split/generate-$split.txt" ] || greedy_decode "$1/checkpoint_best.pt" "$split" "$1/decode_$split"
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

# train STAGE OUT CONFIG_DIR CONFIG_NAME OVERRIDES...: train in OUT, resuming from its
# checkpoint_last.pt.  Every run validates and checkpoints the same way.
train() {
    local st=$1 out=$2 dir=$3 name=$4
    shift 4
    local a
    for a in "$@"; do  # a run resumes only under its own budget
        case "$a" in
            optimization.max_update=*)
                [ -f "$out/checkpoint_last.pt" ] && python examples/lowres/local.py check-budget --run "$out" --max-update "${a#*=}" ;;
        esac
    done
    log "$st" "${out#"$exp"/}: training"
    mkdir -p "$out"
    fairseq-hydra-train --config-dir "$dir" --config-name "$name" common.user_dir=sslasr_plugin \
        "task.data=$(hq "$data")" "checkpoint.save_dir=$(hq "$out")" "hydra.run.dir=$(hq "$out/hydra")" \
        "common.tensorboard_logdir=$(hq "$out/tensorboard")" common.log_interval=50 \
        "dataset.max_tokens=$max_tokens" "dataset.validate_interval_updates=$interval" \
        "checkpoint.save_interval_updates=$interval" checkpoint.keep_interval_updates=1 "$@" >> "$out/train.out" 2>&1 \
        || { log "$st" "${out#"$exp"/}: training failed, see $out/train.out"; exit 1; }
}

# kept OUT: OUT was trained and decoded on another machine (its figures are in the store, it has
# no checkpoint here).
kept() { [ ! -f "$1/DONE" ] && [ ! -f "$1/checkpoint_last.pt" ] && [ -s "$store/${1#"$exp"/}/facts.json" ]; }
kept_log() { log "$1" "${2#"$exp"/}: trained elsewhere, its figures kept in $store, skipped (delete them there to train it again)"; }

# run STAGE OUT CONFIG_DIR CONFIG_NAME OVERRIDES...: train (checkpoint selected on valid CER) and
# decode, unless OUT is DONE.
run() {
    local st=$1 out=$2
    same_point "$st" "$out"
    if [ -f "$out/DONE" ]; then log "$st" "${out#"$exp"/}: done, skipped"; return; fi
    restore "$st" "$out"
    if [ -f "$out/RESTORED" ]; then log "$st" "${out#"$exp"/}: restored, skipped"; return; fi
    if kept "$out"; then kept_log "$st" "$out"; return; fi
    train "$@" checkpoint.best_checkpoint_metric=uer
    decode_run "$out"
    touch "$out/DONE"
    log "$st" "${out#"$exp"/}: done"
}

# prepare STAGE OUT CONFIG_DIR CONFIG_NAME OVERRIDES...: a training that is not decoded (a frame
# teacher, a pre-training; checkpoint selected on valid loss), unless OUT is TRAINED.
prepare() {
    if [ -f "$2/TRAINED" ]; then log "$1" "${2#"$exp"/}: trained, skipped"; return; fi
    train "$@"
    touch "$2/TRAINED"
    log "$1" "${2#"$exp"/}: trained"
}

baseline() {  # STAGE POINT SEED: supervised on the labeled subset until valid CER stops improving
    point_args "$2"
    run "$1" "$exp/$subset/baseline_$2_s$3" examples/ctc scratch_fbank "dataset.train_subset=$subset" \
        "optimization.max_update=$base_updates" "checkpoint.patience=$patience" "common.seed=$3" "${sweep_args[@]}"
}

best_point() {  # the sweep point whose first-seed run reached the lowest valid CER
    python examples/lowres/local.py best --exp "$exp/$subset" --store "$store/$subset" --seed "$first_seed" $sweep
}

# baseline_init STAGE SEED: `init`, the best sweep point's baseline checkpoint of SEED (restored
# from the store when it was trained on another machine), and that point's `point` and
# `sweep_args`; refused when SEED's control, which every arm of SEED is paired with, is of another point.
baseline_init() {
    point_args "$(best_point)"
    same_point "$1" "$exp/$subset/control_s$2"
    init="$exp/$subset/baseline_${point}_s$2/checkpoint_best.pt"
    restore "$1" "$(dirname "$init")"
    if [ ! -s "$init" ]; then
        echo "error: $init does not exist: run stage 3 for seed $2 first (or bring back the run's directory)" >&2
        exit 1
    fi
}

# pl_args STAGE SEED: continuing from that seed's plateaued baseline; a PL arm and its control
# share these overrides.
pl_args() {
    baseline_init "$1" "$2"
    pl=("checkpoint.finetune_from_model=$(hq "$init")" task.warmup_updates=0 "dataset.train_subset=$subset"
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
    for seed in $seeds; do
        pl_args 4 "$seed"
        run 4 "$exp/$subset/control_s$seed" examples/slimipl slimipl +variant=supervised_only \
            "common.seed=$seed" "${pl[@]}"
    done
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
    for seed in $seeds; do
        pl_args 5 "$seed"
        run 5 "$exp/$subset/slimipl_hard_s$seed" examples/slimipl slimipl "common.seed=$seed" "${pl[@]}" \
            "${slimipl[@]}"
    done
    # the ceiling of the PL arms at their own schedule: labels without errors (the true transcripts)
    pl_args 5 "$first_seed"
    run 5 "$exp/$subset/slimipl_oracle_s$first_seed" examples/slimipl slimipl "common.seed=$first_seed" \
        "${pl[@]}" "${slimipl[@]}" task.pl_decoder=oracle
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
    pl_args 6 "$first_seed"
    run 6 "$exp/$subset/slimipl_hard_ood_s$first_seed" examples/slimipl slimipl "common.seed=$first_seed" \
        "${pl[@]}" "${slimipl[@]}" task.unlabeled_subsets=unlabeled_ood
    run 6 "$exp/$subset/slimipl_oracle_ood_s$first_seed" examples/slimipl slimipl "common.seed=$first_seed" \
        "${pl[@]}" "${slimipl[@]}" task.unlabeled_subsets=unlabeled_ood task.pl_decoder=oracle
    # the best PL arm (stage 7's) on both unlabeled splits at once: the held-out voices are labeled
    # by a model that the training voices' pseudo-labels improve as it goes (pl_cer_unlabeled_ood)
    run 6 "$exp/$subset/soft_ctc_mix_both_s$first_seed" examples/slimipl slimipl +variant=soft_ctc_mix \
        "common.seed=$first_seed" "${pl[@]}" "${slimipl[@]}" "task.unlabeled_subsets='unlabeled,unlabeled_ood'"
    # slimIPL's schedule on a teacher's fixed labels of the held-out voices: how much the adaptation
    # gains per point of label CER, between the baseline's own labels and the true transcripts
    for seed in $arm_seeds; do
        [ -n "$ood_teachers" ] || break
        pl_args 6 "$seed"
        for teacher in $ood_teachers; do
            out="$exp/$subset/slimipl_fixed_ood_${teacher}_s$seed"
            ext="pl_${teacher}_s$seed.ltr"
            if [ ! -f "$out/DONE" ] && ! kept "$out"; then
                case "$teacher" in
                    baseline|truth*) model="$init"; decoder=baseline ;;
                    oracle) model="$exp/oracle_s$first_seed/checkpoint_best.pt"; decoder=$teacher ;;
                    *) model="$exp/$subset/${teacher}_s$seed/checkpoint_best.pt"; decoder=$teacher ;;
                esac
                if [ ! -s "$model" ] || { [ "$decoder" != baseline ] && [ ! -f "$(dirname "$model")/DONE" ]; }; then
                    echo "error: the teacher $model is not trained here: run its stage first (oracle: 1, slimipl_oracle: 5, joint arms: 10 with --pretrain-arms $teacher --arm-seeds $seed)" >&2
                    exit 1
                fi
                labels="$exp/$subset/ood_labels_${decoder}_s$seed"
                if [ ! -s "$labels/generate-unlabeled_ood.txt" ]; then
                    log 6 "${labels#"$exp"/}: $decoder's greedy labels of unlabeled_ood"
                    greedy_decode "$model" unlabeled_ood "$labels"
                fi
                if [ "$decoder" = "$teacher" ]; then
                    python examples/lowres/local.py labels-file --generate "$labels/generate-unlabeled_ood.txt" \
                        --data "$data" --split unlabeled_ood --ext "$ext" >/dev/null
                    python examples/lowres/local.py label-quality --generate "$labels/generate-unlabeled_ood.txt" \
                        --data "$data" --split unlabeled_ood > "$labels/label_quality.md"
                else  # truth<N>: the baseline's labels, N% of the rows (drawn by the seed) the true transcripts
                    python examples/lowres/local.py labels-file --generate "$labels/generate-unlabeled_ood.txt" \
                        --data "$data" --split unlabeled_ood --ext "$ext" --truth-percent "${teacher#truth}" \
                        --seed "$seed" >/dev/null
                    mkdir -p "$exp/$subset/ood_labels_${teacher}_s$seed"
                    python examples/lowres/local.py labels-cer --data "$data" --split unlabeled_ood --ext "$ext" \
                        > "$exp/$subset/ood_labels_${teacher}_s$seed/label_quality.md"
                fi
            fi
            run 6 "$out" examples/slimipl slimipl "common.seed=$seed" "${pl[@]}" "${slimipl[@]}" \
                task.unlabeled_subsets=unlabeled_ood task.pl_decoder=file "task.pl_labels=$ext"
        done
    done
fi

if [ "$stage" -le 7 ] && [ "$stop_stage" -ge 7 ]; then
    for seed in $arm_seeds; do
        pl_args 7 "$seed"
        for arm in $pl_arms; do
            schedule=("${slimipl[@]}")
            case "$arm" in
                soft_ctc_mix) arm_args=(+variant=soft_ctc_mix) ;;
                slimipl_ema) arm_args=(+variant=ema) ;;
                slimipl_frozen) arm_args=(+variant=ema ema.ema_decay=1.0) ;;
                slimipl_1to1) arm_args=(); schedule=("${slimipl[@]/#task.unsup_updates=*/task.unsup_updates=1}") ;;
            esac
            run 7 "$exp/$subset/${arm}_s$seed" examples/slimipl slimipl ${arm_args[@]+"${arm_args[@]}"} \
                "common.seed=$seed" "${pl[@]}" "${schedule[@]}"
        done
    done
fi

# lm_args SEED: `lm`, the overrides of LM-decoded pseudo-labels (word LM + lexicon), their weights
# tuned on valid CER with SEED's baseline (`init`, set by pl_args).  CER, not WER: the labels train
# a letter model, and the WER-best weights (LM weight 3, word score 0 on seed 1) gave labels short of
# letters (0.84 of the labeled data's letter rate, greedy labels 0.92), a bias that fed on itself:
# 0.48 and pseudo-label CER 54% within 300 updates (docs/results/lowres/notes.md).
lm_args() {
    local tuned="$exp/$subset/tune_lm_s$1"
    if [ ! -s "$tuned/best.json" ]; then
        log 8 "LM weights for seed $1's baseline, tuned on valid"
        mkdir -p "$tuned"
        python -m sslasr_plugin.decoding.tune_lm "$data" --path "$init" --kenlm-model "$data/lm/word.bin" \
            --lexicon "$data/lm/lexicon.txt" --lm-weights 1 2 3 --scores -1 0 1 2 4 6 --metric cer \
            --best-json "$tuned/best.json" > "$tuned/grid.md"
    fi
    read -r lm_weight word_score < <(python -c 'import json, sys; b = json.load(open(sys.argv[1]))
print(b["lm_weight"], b["word_score"])' "$tuned/best.json")
    lm=(task.pl_decoder=lm "task.kenlm_model=$(hq "$data/lm/word.bin")" "task.lexicon=$(hq "$data/lm/lexicon.txt")"
        "task.pl_lm_weight=$lm_weight" "task.word_score=$word_score")
}

if [ "$stage" -le 8 ] && [ "$stop_stage" -ge 8 ]; then
    for seed in $arm_seeds; do
        pl_args 8 "$seed"
        lm_args "$seed"
        run 8 "$exp/$subset/slimipl_lm_s$seed" examples/slimipl slimipl "common.seed=$seed" "${pl[@]}" \
            "${slimipl[@]}" "${lm[@]}"
    done
    # the held-out voices have no valid split of their own: the weights tuned on valid serve there too
    pl_args 8 "$first_seed"
    lm_args "$first_seed"
    run 8 "$exp/$subset/slimipl_lm_ood_s$first_seed" examples/slimipl slimipl "common.seed=$first_seed" \
        "${pl[@]}" "${slimipl[@]}" "${lm[@]}" task.unlabeled_subsets=unlabeled_ood
fi

# The frame teacher's files of SEED: the aligned units, the teacher, its labels.
frame_dirs() {
    units="$exp/$subset/frame_units_s$1"; teacher="$exp/$subset/frame_teacher_s$1"; frame_pl="$exp/$subset/frame_pl_s$1"
}

# frame_classes STAGE SEED: the seed's context-dependent classes in $units (frame_dirs), fitted on
# $subset as aligned by the seed's baseline (deterministic: a removed $units comes back the same).
frame_classes() {
    baseline_init "$1" "$2"
    if [ ! -s "$units/units.json" ]; then  # data_prep.align resumes a split it left unfinished
        log "$1" "${units#"$exp"/}: $subset and valid aligned by seed $2's baseline, $classes classes at most"
        python -m data_prep.align --ctc "$init" --data "$data" --splits "$subset" valid --out "$units" \
            --classes "$classes" --min-frames "$min_frames" --no-progress
    fi
}

# students SEED: stage 10's CSL and CE-PL runs of SEED (of --pretrain-arms), into `students`.
students() {
    local arm
    students=()
    for arm in $frame_arms; do
        case "$arm" in csl|ce_pl) students+=("$exp/$subset/${arm}_frame_s$1") ;; esac
    done
}

if [ "$stage" -le 9 ] && [ "$stop_stage" -ge 9 ]; then
    for seed in $arm_seeds; do
        students "$seed"
        all_kept=1
        for s in "${students[@]}"; do kept "$s" || all_kept=0; done
        if [ ${#students[@]} -eq 0 ] || [ $all_kept = 1 ]; then  # no student needs this seed's teacher
            log 9 "seed $seed: no CSL or CE-PL run to train (--pretrain-arms, or their figures kept in $store), no teacher"
            continue
        fi
        frame_dirs "$seed"
        frame_classes 9 "$seed"
        same_point 9 "$teacher"
        prepare 9 "$teacher" examples/csl teacher "task.label_dir=$(hq "$units")" "model.init_encoder=$(hq "$init")" \
            "dataset.train_subset=$subset" "optimization.max_update=$teacher_updates" "common.seed=$seed"
        if [ ! -s "$frame_pl/valid.plab" ]; then  # data_prep.pseudo_labels resumes too
            log 9 "${frame_pl#"$exp"/}: the teacher's frame labels of unlabeled and valid"
            python -m data_prep.pseudo_labels --teacher "$teacher/checkpoint_best.pt" --data "$data" \
                --splits unlabeled valid --out "$frame_pl" --no-progress
        fi
    done
fi

if [ "$stage" -le 10 ] && [ "$stop_stage" -ge 10 ]; then
    point_args "$(best_point)"
    for seed in $arm_seeds; do
        same_point 10 "$exp/$subset/control_s$seed"  # the control these arms are paired with
        frame_dirs "$seed"
        for arm in $frame_arms; do
            case "$arm" in
                csl|ce_pl) pre="$exp/$subset/${arm}_frame_pretrain_s$seed"; out="$exp/$subset/${arm}_frame_s$seed" ;;
                csl_oracle|ce_pl_oracle)
                    pre="$exp/$subset/${arm%_oracle}_frame_oracle_pretrain_s$seed"
                    out="$exp/$subset/${arm%_oracle}_frame_oracle_s$seed" ;;
                joint|joint_both|joint_ood|joint_mix) out="$exp/$subset/${arm}_s$seed" ;;
                *) pre="$exp/$subset/${arm}_pretrain_s$seed"; out="$exp/$subset/${arm}_ctc_s$seed" ;;
            esac
            if kept "$out"; then same_point 10 "$out"; kept_log 10 "$out"; continue; fi  # run() checks the others
            if [ "${arm%%_*}" = joint ]; then  # one run: contrastive and CTC updates alternate (1:1)
                case "$arm" in joint) unsup=unlabeled ;; joint_both) unsup="'unlabeled,unlabeled_ood'" ;;
                    joint_ood) unsup=unlabeled_ood ;;
                    joint_mix) unsup="'$(python examples/lowres/local.py weighed-subsets --data "$data" unlabeled unlabeled_ood)'" ;; esac
                run 10 "$out" examples/joint joint "dataset.train_subset=$subset" "task.unlabeled_subsets=$unsup" \
                    "optimization.max_update=$((pretrain_updates + ft_updates))" "common.seed=$seed" "${sweep_args[@]}"
                continue
            fi
            case "$arm" in
                csl|ce_pl)
                    if [ ! -f "$teacher/TRAINED" ] || [ ! -s "$frame_pl/valid.plab" ]; then
                        echo "error: no frame labels of seed $seed's teacher in $frame_pl: run stage 9 first" >&2
                        exit 1
                    fi
                    same_point 10 "$teacher"
                    prepare 10 "$pre" examples/csl "$arm" "task.label_dir=$(hq "$frame_pl")" \
                        "optimization.max_update=$pretrain_updates" "common.seed=$seed" ;;
                csl_oracle|ce_pl_oracle)  # true transcripts aligned into stage 9's classes, no teacher
                    oracle_frames="$exp/$subset/frame_oracle_s$seed"
                    if [ ! -f "$pre/TRAINED" ]; then
                        frame_classes 10 "$seed"
                        if [ ! -s "$oracle_frames/units.json" ]; then  # align resumes a split
                            log 10 "${oracle_frames#"$exp"/}: unlabeled and valid aligned with their true transcripts by seed $seed's baseline, in ${units#"$exp"/}'s classes"
                            python -m data_prep.align --ctc "$init" --units "$units" --data "$data" \
                                --splits unlabeled valid --out "$oracle_frames" --no-progress
                        fi
                        python examples/lowres/local.py same-classes "$oracle_frames" "$units"
                    fi
                    prepare 10 "$pre" examples/csl "${arm%_oracle}" "task.label_dir=$(hq "$oracle_frames")" \
                        "task.labels=[unit]" "optimization.max_update=$pretrain_updates" "common.seed=$seed" ;;
                w2v2|w2v2_both)
                    split=unlabeled
                    [ "$arm" = w2v2_both ] && split=unlabeled_both
                    if [ "$split" = unlabeled_both ] && [ ! -f "$pre/TRAINED" ]; then  # only pre-training reads it
                        python examples/lowres/local.py combine --data "$data" --name "$split" unlabeled unlabeled_ood
                    fi
                    prepare 10 "$pre" examples/wav2vec2 pretrain_fbank "dataset.train_subset=$split" \
                        "optimization.max_update=$pretrain_updates" "common.seed=$seed" ;;
                hubert)  # iteration 1: clusters of MFCCs, learned on and labelling `unlabeled` (and valid)
                    km="$exp/$subset/hubert_km_s$seed"
                    if [ ! -f "$pre/TRAINED" ] && [ ! -s "$km/labels.json" ]; then  # hubert_labels resumes
                        log 10 "${km#"$exp"/}: $km_clusters k-means clusters of MFCCs, labels of unlabeled and valid"
                        python -m data_prep.hubert_labels --data "$data" --out "$km" --features mfcc \
                            --clusters "$km_clusters" --train-split unlabeled --splits unlabeled valid --seed "$seed" \
                            --no-progress
                    fi
                    prepare 10 "$pre" examples/ssl hubert_iter1 "task.label_dir=$(hq "$km")" \
                        dataset.train_subset=unlabeled "optimization.max_update=$pretrain_updates" \
                        "lr_scheduler.warmup_updates=$(( (pretrain_updates * 8 + 99) / 100 ))" "common.seed=$seed" ;;
            esac
            # fine-tuning keeps finetune_w2v.yaml's share of frozen-encoder updates (1 in 5)
            run 10 "$out" examples/ctc finetune_w2v \
                "model.w2v_path=$(hq "$pre/checkpoint_last.pt")" "dataset.train_subset=$subset" \
                "optimization.max_update=$ft_updates" "model.freeze_finetune_updates=$((ft_updates / 5))" \
                "common.seed=$seed" "${sweep_args[@]}"
        done
    done
fi

if [ "$stage" -le 11 ] && [ "$stop_stage" -ge 11 ]; then
    log 11 "results page $page"
    python examples/lowres/local.py rebuild --exp "$exp" --page "$page"
fi
