"""CTC decoding speed and memory: beam search with an n-gram LM against greedy, beams 1 to 500.

The model runs once over the split (``tune_lm.split_emissions``); each decoder then decodes the
stored log-probs, one utterance at a time as fairseq-generate's generator does, in a forked
process of its own so that its memory is its own: utterances/s, real-time factor (decoding
seconds per second of audio; under 1 is faster than real time; the model's forward pass is not
included), peak resident memory above the process's before the decoder was built (the LM
loaded, the beams), and WER/CER.

    python benchmarks/lm_decoding.py data/demo --path exp/demo_ctc/checkpoint_best.pt --lm data/lm \\
        --lm-weight 2 --word-score 0 --beams 1 5 50 500
"""
import argparse
import multiprocessing
import sys

import torch

from sslasr_plugin.decoding.ctc import greedy_decode
from sslasr_plugin.decoding.lm import LmBeamDecoder
from sslasr_plugin.decoding.tune_lm import decode_wer, split_emissions


def memory_kb(field: str) -> int:
    """VmRSS (resident now) or VmHWM (peak resident) of this process, in kB."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def run_one(build, utterances, dictionary, blank, results):
    """In a forked child: build the decoder, decode every utterance, report speed and memory."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the resident memory now (Linux)
    before = memory_kb("VmRSS")
    rates = decode_wer(build(), utterances, dictionary, blank)
    rates["peak_mb"] = (memory_kb("VmHWM") - before) / 1024
    results.put(rates)


def measure(build, utterances, dictionary, blank):
    results = multiprocessing.get_context("fork").SimpleQueue()
    child = multiprocessing.get_context("fork").Process(target=run_one,
                                                        args=(build, utterances, dictionary, blank, results))
    child.start()
    rates = results.get()
    child.join()
    return rates


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data")
    parser.add_argument("--path", required=True, help="CTC checkpoint")
    parser.add_argument("--lm", required=True, help="data_prep.lm output directory")
    parser.add_argument("--subset", default="test")
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 5, 50, 500])
    parser.add_argument("--lm-weight", type=float, default=2.0)
    parser.add_argument("--word-score", type=float, default=0.0)
    parser.add_argument("--sil-weight", type=float, default=0.0, help="lexicon-free boundary score")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    utterances, dictionary, blank = split_emissions(args.path, args.data, args.subset)
    audio = sum(seconds for _, _, seconds in utterances)
    symbols = dictionary.symbols
    arms = {"greedy": lambda: greedy_decode}
    for beam in args.beams:
        arms[f"word LM + lexicon, beam {beam}"] = lambda beam=beam: LmBeamDecoder(
            symbols, blank, f"{args.lm}/word.bin", f"{args.lm}/lexicon.txt", beam=beam, lm_weight=args.lm_weight,
            word_score=args.word_score)
        arms[f"letter LM, beam {beam}"] = lambda beam=beam: LmBeamDecoder(
            symbols, blank, f"{args.lm}/letter.bin", beam=beam, lm_weight=args.lm_weight,
            sil_weight=args.sil_weight)
    print(f"{args.subset}: {len(utterances)} utterances, {audio:.0f} s of audio, 1 thread\n")
    print("| decoder | utterances/s | real-time factor | peak memory MB | WER % | CER % |\n|---|---|---|---|---|---|")
    for name, build in arms.items():
        r = measure(build, utterances, dictionary, blank)
        print(f"| {name} | {len(utterances) / r['seconds']:.1f} | {r['seconds'] / audio:.4f} | {r['peak_mb']:.0f} "
              f"| {r['wer']:.2f} | {r['cer']:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
