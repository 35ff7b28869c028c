"""N-gram language models for CTC beam search, from text the corpus never evaluates on.

    python -m data_prep.lm --out data/lm

Writes into --out (KenLM's lmplz estimates, build_binary converts):

    word.arpa, word.bin       word LM (lexicon decoding: --kenlm-model word.bin --lexicon lexicon.txt)
    letter.arpa, letter.bin   letter LM over the CTC letters, '|' ends a word (lexicon-free decoding)
    lexicon.txt               "WORD<TAB>W O R D |" for every word of the LM text
    word.txt, letter.txt      the LM text, one sentence per line
    lm.json                   what the text holds and leaves out, orders, the commands run

The text: every fortune sentence the corpus reads (data_prep.corpus.load_sentences) minus the
fixed evaluation pool and every valid/test/test_ood sentence of every preset, minus (by default)
every sentence of any preset's unlabeled* splits: an LM that holds the unlabeled transcripts
would hand LM-decoded pseudo-labels the oracle.  ``--include-unlabeled`` keeps them (recorded in
lm.json).  The fortune sentences outside the corpus's word-count window (no split ever speaks
them) are added unless ``--no-extra-fortunes``.

How much of a corpus's transcripts the lexicon can spell (a lexicon decoder cannot emit the rest,
so LM-decoded labels lose their letters):

    python -m data_prep.lm --out data/lm --coverage data/demo
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from .corpus import EVAL_SPLITS, FORTUNE_DIR, PRESETS, eval_pool_sentences, load_sentences, plan_corpus
from .text import letters

# The corpus reads sentences of 4-14 words; these bounds take in the rest of the fortunes.
EXTRA_MIN_WORDS, EXTRA_MAX_WORDS = 1, 40


class LmError(RuntimeError):
    """An LM cannot be built as asked; the message says why and what to do."""


def excluded_sentences(include_unlabeled: bool = False, fortune_dir: str = FORTUNE_DIR,
                       seed: int = 1) -> Dict[str, set]:
    """Sentences an LM must not hold: ``eval`` (every preset's eval splits and the fixed pool)
    and ``unlabeled`` (every preset's unlabeled* splits; empty when ``include_unlabeled``)."""
    sentences = load_sentences(fortune_dir)
    held_out = {"eval": set(eval_pool_sentences(fortune_dir)), "unlabeled": set()}
    for sizes in PRESETS.values():
        for utt in plan_corpus(sentences, sizes, seed=seed):
            if utt.split in EVAL_SPLITS:
                held_out["eval"].add(utt.text)
            elif utt.split.startswith("unlabeled") and not include_unlabeled:
                held_out["unlabeled"].add(utt.text)
    return held_out


def lm_text(include_unlabeled: bool = False, extra_fortunes: bool = True,
            fortune_dir: str = FORTUNE_DIR) -> (List[str], dict):
    """The LM's sentences (sorted) and a summary of where they come from."""
    corpus = set(load_sentences(fortune_dir))
    held_out = excluded_sentences(include_unlabeled, fortune_dir)
    text = corpus - held_out["eval"] - held_out["unlabeled"]
    extra = set()
    if extra_fortunes:
        extra = set(load_sentences(fortune_dir, EXTRA_MIN_WORDS, EXTRA_MAX_WORDS)) - corpus
        extra -= held_out["eval"] | held_out["unlabeled"]
    summary = {
        "corpus_sentences": len(corpus), "excluded_eval": len(held_out["eval"] & corpus),
        "excluded_unlabeled": len(held_out["unlabeled"] - held_out["eval"]),
        "includes_unlabeled": include_unlabeled, "from_corpus_sentences": len(text),
        "extra_fortune_sentences": len(extra),
        "extra_fortune_words": f"{EXTRA_MIN_WORDS}-{EXTRA_MAX_WORDS} words, outside the corpus's window"
        if extra_fortunes else None,
    }
    return sorted(text | extra), summary


def kenlm_tool(name: str) -> str:
    """Path of KenLM's ``lmplz`` or ``build_binary``: next to this Python (where run.sh builds
    them), else on PATH."""
    local = Path(sys.executable).parent / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise LmError(f"KenLM's {name} is not installed; 'bash run.sh setup' builds it into the environment")
    return found


def _run(args: Sequence[str], log: List[str]) -> None:
    log.append(" ".join(args))
    proc = subprocess.run(list(args), capture_output=True, text=True)
    if proc.returncode != 0:
        raise LmError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


def estimate(text: Path, order: int, arpa: Path, binary: Path, log: List[str]) -> None:
    """lmplz (modified Kneser-Ney) then build_binary.  --discount_fallback: small texts lack
    the count-of-counts lmplz estimates discounts from."""
    _run([kenlm_tool("lmplz"), "-o", str(order), "--text", str(text), "--arpa", str(arpa), "-S", "10%",
          "-T", str(arpa.parent), "--discount_fallback"], log)
    _run([kenlm_tool("build_binary"), str(arpa), str(binary)], log)


def write_lexicon(path: Path, sentences: Sequence[str]) -> int:
    """One line per word: the word, a tab, its letters as the CTC dictionary spells them."""
    words = sorted({word for sentence in sentences for word in sentence.split()})
    path.write_text("".join(f"{word}\t{letters(word)}\n" for word in words))
    return len(words)


def build_lms(out: str, word_order: int = 4, letter_order: int = 6, include_unlabeled: bool = False,
              extra_fortunes: bool = True, overwrite: bool = False, fortune_dir: str = FORTUNE_DIR,
              sentences: Optional[Sequence[str]] = None) -> Path:
    """Build both LMs and the lexicon in ``out``; ``sentences`` replaces the corpus-derived text
    (tests build a tiny LM that way)."""
    out_dir = Path(out)
    if (out_dir / "lm.json").exists() and not overwrite:
        raise LmError(f"{out_dir / 'lm.json'} exists; pass --overwrite to build the LMs again")
    # Without lm.json (written last) the other outputs are an interrupted build's: rebuilt.
    summary = {"source": "given sentences"}
    if sentences is None:
        sentences, summary = lm_text(include_unlabeled, extra_fortunes, fortune_dir)
    if not sentences:
        raise LmError("the LM text is empty")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "word.txt").write_text("".join(s + "\n" for s in sentences))
    (out_dir / "letter.txt").write_text("".join(letters(s) + "\n" for s in sentences))
    log: List[str] = []
    estimate(out_dir / "word.txt", word_order, out_dir / "word.arpa", out_dir / "word.bin", log)
    estimate(out_dir / "letter.txt", letter_order, out_dir / "letter.arpa", out_dir / "letter.bin", log)
    summary.update(sentences=len(sentences), words=sum(len(s.split()) for s in sentences),
                   lexicon_words=write_lexicon(out_dir / "lexicon.txt", sentences),
                   word_order=word_order, letter_order=letter_order, commands=log)
    (out_dir / "lm.json").write_text(json.dumps(summary, indent=1) + "\n")
    return out_dir


def lexicon_words(lexicon: Path) -> set:
    return {line.split("\t", 1)[0] for line in lexicon.read_text().splitlines() if line.strip()}


def lexicon_coverage(known: set, transcripts: Sequence[str]) -> dict:
    """How much of ``transcripts`` (lines of words) a lexicon of the words ``known`` can spell: the
    share of words, of their letters, and of utterances with a word outside it, in %."""
    words = [word for line in transcripts for word in line.split()]
    oov_letters = sum(len(word) for word in words if word not in known)
    return {"words": len(words),
            "oov_words": 100.0 * sum(word not in known for word in words) / max(len(words), 1),
            "oov_letters": 100.0 * oov_letters / max(sum(len(word) for word in words), 1),
            "utterances_with_oov": 100.0 * sum(any(w not in known for w in line.split()) for line in transcripts)
            / max(len(transcripts), 1)}


def print_coverage(lm_dir: Path, data: Path, splits: Sequence[str]) -> None:
    print("| split | words | out-of-lexicon words % | their letters % | utterances with one % |\n|---|---|---|---|---|")
    known = lexicon_words(lm_dir / "lexicon.txt")
    for split in splits:
        path = data / f"{split}.wrd"
        if not path.exists():
            raise LmError(f"{path} does not exist (a split's word transcripts; data_prep.corpus writes them)")
        c = lexicon_coverage(known, path.read_text().splitlines())
        print(f"| {split} | {c['words']} | {c['oov_words']:.1f} | {c['oov_letters']:.1f} | {c['utterances_with_oov']:.0f} |")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--word-order", type=int, default=4, help="n-gram order of the word LM")
    parser.add_argument("--letter-order", type=int, default=6,
                        help="n-gram order of the letter LM (at most 6: KenLM's KENLM_MAX_ORDER in flashlight-text)")
    parser.add_argument("--include-unlabeled", action="store_true",
                        help="keep the unlabeled splits' sentences (LM pseudo-labels then see their transcripts)")
    parser.add_argument("--no-extra-fortunes", action="store_true",
                        help="only sentences of the corpus's word-count window")
    parser.add_argument("--overwrite", action="store_true", help="replace LMs already in --out")
    parser.add_argument("--coverage", metavar="DATA", default=None,
                        help="build nothing: print how much of DATA's transcripts the lexicon in --out covers")
    parser.add_argument("--splits", nargs="+", default=["unlabeled", "unlabeled_ood", "valid", "test", "test_ood"],
                        help="with --coverage: the splits ({split}.wrd) to measure")
    args = parser.parse_args(argv)
    if args.coverage:
        if not (Path(args.out) / "lexicon.txt").exists():
            print(f"error: {Path(args.out) / 'lexicon.txt'} does not exist: build the LMs first "
                  f"(python -m data_prep.lm --out {args.out})", file=sys.stderr)
            return 2
        try:
            print_coverage(Path(args.out), Path(args.coverage), args.splits)
        except LmError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        return 0
    try:
        out = build_lms(args.out, args.word_order, args.letter_order, args.include_unlabeled,
                        not args.no_extra_fortunes, args.overwrite)
    except LmError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    summary = json.loads((out / "lm.json").read_text())
    print(f"LMs ready: {out} ({summary['sentences']} sentences, {summary['words']} words, "
          f"{summary['lexicon_words']} lexicon words, unlabeled text "
          f"{'included' if summary['includes_unlabeled'] else 'excluded'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
