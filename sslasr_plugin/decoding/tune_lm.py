"""Tune LM decoding on valid: a grid over LM weight and word score, then decode test sets with the best.

    python -m sslasr_plugin.decoding.tune_lm data/demo --path exp/demo_ctc/checkpoint_best.pt \
        --kenlm-model data/lm/word.bin --lexicon data/lm/lexicon.txt --beam 50 \
        --decode test test_ood --results-path exp/demo_ctc/decode_lm_word

The model runs once over the tuning split; every grid point decodes the stored log-probs with
``decoding.lm.LmBeamDecoder``, the decoder fairseq-generate uses, and the first row decodes them
greedily (no LM), the reference the grid is read against.  Without --lexicon
(lexicon-free, a letter LM) the second axis is the score per word boundary (``--sil-weight``),
as flashlight's lexicon-free decoder has no word score.  ``--decode`` runs fairseq-generate on
those splits with the best pair and prints the WER/CER table.
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from sslasr_data.files import write_text

from .ctc import emissions, greedy_decode
from .lm import LmBeamDecoder, LmDecodingError
from .report import error_rates, markdown_table, read_generate_output


@torch.no_grad()
def split_emissions(checkpoint: str, data: str, split: str, max_tokens: int = 4_000_000):
    """Per utterance of ``split``: its log-probs (T, V), reference words and audio seconds; the
    dictionary; and the blank's index (the task's ``blank_symbol``, as its CTC criterion uses)."""
    from fairseq import checkpoint_utils  # the plugin's tasks and models registered when sslasr_plugin was imported

    models, _, task = checkpoint_utils.load_model_ensemble_and_task([checkpoint], arg_overrides={"data": data})
    model = models[0].eval()
    task.load_dataset(split)
    dictionary, dataset = task.target_dictionary, task.dataset(split)
    batches = task.get_batch_iterator(dataset, max_tokens=max_tokens).next_epoch_itr(shuffle=False)
    utterances = []
    for sample in batches:
        lprobs, lengths = emissions(model, sample["net_input"])
        for b in range(lprobs.size(0)):
            target = sample["target"][b][sample["target"][b] != dictionary.pad()]
            seconds = dataset.sizes[sample["id"][b]] / task.cfg.sample_rate
            utterances.append((lprobs[b, : lengths[b]].cpu(), dictionary.string(target, "letter"), seconds))
    return utterances, dictionary, dictionary.index(task.blank_symbol)


def decode_wer(decoder, utterances, dictionary, blank: int) -> Dict[str, float]:
    """WER/CER of ``decoder`` over stored (log-probs, reference) pairs, the hypotheses' letters per
    reference letter (below 1: deletions outweigh insertions), and its decoding time."""
    pairs, start = [], time.perf_counter()
    for lprobs, ref, _ in utterances:
        hypo = decoder(lprobs[None], torch.tensor([lprobs.size(0)]), blank)[0]
        pairs.append((ref, dictionary.string(hypo["tokens"], "letter")))
    rates = error_rates(pairs)
    letters = [sum(len(text.replace(" ", "")) for text in side) for side in zip(*pairs)] if pairs else [0, 0]
    rates["length_ratio"] = letters[1] / max(letters[0], 1)
    rates["seconds"] = time.perf_counter() - start
    return rates


def grid_search(utterances, dictionary, blank: int, kenlm_model: str, lexicon: Optional[str],
                lm_weights: Sequence[float], scores: Sequence[float], beam: int,
                **decoder_options) -> List[Tuple[float, float, Dict]]:
    """(LM weight, word score or boundary score, rates) for every pair of the grid."""
    second = "word_score" if lexicon else "sil_weight"
    results = []
    for lm_weight in lm_weights:
        for score in scores:
            decoder = LmBeamDecoder(dictionary.symbols, blank, kenlm_model, lexicon, beam=beam, lm_weight=lm_weight,
                                    **{second: score}, **decoder_options)
            results.append((lm_weight, score, decode_wer(decoder, utterances, dictionary, blank)))
    return results


def generate_command(data: str, checkpoint: str, split: str, results_path: str, kenlm_model: str,
                     lexicon: Optional[str], beam: int, lm_weight: float, score: float) -> List[str]:
    command = ["fairseq-generate", data, "--user-dir", str(Path(__file__).resolve().parents[1]),
               "--task", "sslasr_audio_ctc", "--path", checkpoint, "--gen-subset", split, "--scoring", "wer",
               "--post-process", "letter", "--max-tokens", "4000000", "--results-path", results_path,
               "--kenlm-model", kenlm_model, "--beam", str(beam), "--lm-weight", str(lm_weight)]
    if lexicon:
        return command + ["--lexicon", lexicon, "--word-score", str(score)]
    return command + ["--sil-weight", str(score)]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", help="corpus directory ({split}.tsv, {split}.ltr, dict.ltr.txt)")
    parser.add_argument("--path", required=True, help="CTC checkpoint")
    parser.add_argument("--kenlm-model", required=True, help="word LM (with --lexicon) or letter LM")
    parser.add_argument("--lexicon", default=None, help="lexicon for word-LM decoding; none: lexicon-free")
    parser.add_argument("--subset", default="valid", help="the split tuned on")
    parser.add_argument("--beam", type=int, default=50)
    parser.add_argument("--lm-weights", type=float, nargs="+", default=[0.5, 1.0, 1.5, 2.0, 3.0])
    parser.add_argument("--scores", type=float, nargs="+", default=[-1.0, 0.0, 1.0, 2.0],
                        help="word scores (lexicon) or word-boundary scores (lexicon-free)")
    parser.add_argument("--decode", nargs="*", default=[], help="splits to decode with the best pair")
    parser.add_argument("--results-path", default=None, help="fairseq-generate's --results-path for --decode")
    parser.add_argument("--metric", choices=("wer", "cer"), default="wer",
                        help="what 'best' minimises (the other breaks ties): WER for decoding; CER where the "
                        "decodes are a letter model's pseudo-labels")
    parser.add_argument("--best-json", default=None,
                        help="also write the best pair and its rates here, as JSON (for scripts)")
    args = parser.parse_args(argv)
    if args.decode and not args.results_path:
        parser.error("--decode needs --results-path")
    utterances, dictionary, blank = split_emissions(args.path, args.data, args.subset)
    try:
        results = grid_search(utterances, dictionary, blank, args.kenlm_model, args.lexicon, args.lm_weights,
                              args.scores, args.beam)
    except LmDecodingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    # the same emissions decoded without the LM: what every grid row is read against
    greedy = decode_wer(greedy_decode, utterances, dictionary, blank)
    option = "--word-score" if args.lexicon else "--sil-weight"
    print(f"| --lm-weight | {option} | {args.subset} WER % | CER % | letters / reference letters | decoding s |\n"
          "|---|---|---|---|---|---|")
    print(f"| greedy, no LM | | {greedy['wer']:.2f} | {greedy['cer']:.2f} | {greedy['length_ratio']:.3f} | "
          f"{greedy['seconds']:.1f} |")
    for lm_weight, score, rates in results:
        print(f"| {lm_weight} | {score} | {rates['wer']:.2f} | {rates['cer']:.2f} | {rates['length_ratio']:.3f} | "
              f"{rates['seconds']:.1f} |")
    other = "cer" if args.metric == "wer" else "wer"
    lm_weight, score, best = min(results, key=lambda r: (r[2][args.metric], r[2][other]))
    print(f"best on {args.subset} by {args.metric.upper()}: --lm-weight {lm_weight} {option} {score} "
          f"(WER {best['wer']:.2f}, CER {best['cer']:.2f})")
    if args.best_json:
        choice = {"lm_weight": lm_weight, option.lstrip("-").replace("-", "_"): score, "subset": args.subset,
                  "metric": args.metric, "wer": best["wer"], "cer": best["cer"],
                  "length_ratio": best["length_ratio"], "beam": args.beam,
                  "greedy": {key: greedy[key] for key in ("wer", "cer", "length_ratio")}}
        write_text(args.best_json, json.dumps(choice, indent=1) + "\n")
    reports = {}
    for split in args.decode:
        results_path = f"{args.results_path}/{split}"
        subprocess.run(generate_command(args.data, args.path, split, results_path, args.kenlm_model, args.lexicon,
                                        args.beam, lm_weight, score), check=True, stdout=subprocess.DEVNULL)
        reports[split] = error_rates(read_generate_output(f"{results_path}/generate-{split}.txt"))
    if reports:
        print(markdown_table(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
