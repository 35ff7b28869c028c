"""Build the offline synthetic speech corpus: espeak-ng speaks fortune sentences.

    python -m data_prep.corpus --preset demo --out data/demo

espeak-ng voices act as speakers; held-out voices speak ``test_ood`` and ``unlabeled_ood``.  Every
preset draws ``valid``/``test``/``test_ood`` from one fixed sentence pool that no training split of
any preset uses; nested subsets (``labeled_10min``) are prefixes of their parent split.  The seed
decides everything before synthesis, so a command always builds the same corpus and an
interrupted build resumes.  Outputs are fairseq's formats (docs/design.md, "The synthetic
corpus"); the transcripts of unlabeled splits are for oracle analysis only.
"""
import argparse
import dataclasses
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import soundfile as sf

from sslasr_data.files import write_lines

from .text import letters, normalized_sentences, split_fortune_file

SAMPLE_RATE = 16000
EVAL_SPLITS = ("valid", "test", "test_ood")
OOD_SPLITS = ("test_ood", "unlabeled_ood")
# The fixed evaluation pool: sentences 0-799 of a seed-independent shuffle feed valid,
# 800-1599 test, 1600-2399 test_ood, in every preset (so presets never train on each other's eval text).
EVAL_POOL_SEED = 0
EVAL_POOL_SLICE = 800
FORTUNE_DIR = "/usr/share/games/fortunes"
# Fortune files that hold pictures, not prose.
SKIPPED_FORTUNE_FILES = {"art", "ascii-art"}
TRAIN_VOICES = ("en-us", "en-gb", "en-gb-x-rp", "en-us-nyc", "en-gb-x-gbclan")
TRAIN_VARIANTS = ("m1", "m2", "m3", "m4", "f1", "f2", "f3")
OOD_VOICES = ("en-gb-scotland", "en-029", "en-gb-x-gbcwmd")
OOD_VARIANTS = ("m6", "m7", "f4", "f5")
# Utterances per split.
PRESETS: Dict[str, Dict[str, int]] = {
    "tiny": {"labeled": 24, "unlabeled": 24, "unlabeled_ood": 8, "valid": 8, "test": 8, "test_ood": 8},
    "demo": {"labeled": 1500, "unlabeled": 3000, "valid": 150, "test": 200, "test_ood": 200},
    "large": {"labeled": 1000, "unlabeled": 10500, "valid": 600, "test": 700, "test_ood": 700},
    # The low-resource benchmark: 1 h labeled (10 min nested in it), 7 h unlabeled, 1 h of
    # held-out voices for adaptation, 700 utterances per eval split (~3 s each).
    "lowres": {"labeled": 1220, "unlabeled": 8600, "unlabeled_ood": 1220, "valid": 700, "test": 700,
               "test_ood": 700},
}
# Nested subsets: name -> (parent split, utterances), the parent's first rows.
SUBSETS: Dict[str, Dict[str, Tuple[str, int]]] = {
    "tiny": {"labeled_10min": ("labeled", 12)},
    "lowres": {"labeled_10min": ("labeled", 204), "labeled_1h": ("labeled", 1220)},
}
SYSTEM_PACKAGES = "espeak-ng sox fortunes-min fortunes"


class CorpusError(RuntimeError):
    """A corpus cannot be built as asked; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class Utterance:
    id: str
    split: str
    text: str
    voice: str
    variant: str
    rate: int  # words per minute
    pitch: int  # espeak-ng pitch, 0-99

    @property
    def speaker(self) -> str:
        return f"{self.voice}+{self.variant}"

    @property
    def relpath(self) -> str:
        return f"wav/{self.split}/{self.id}.wav"


def check_system_tools() -> None:
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        raise CorpusError(
            f"{' and '.join(missing)} not found on PATH; install them with "
            f"'apt-get install {SYSTEM_PACKAGES}' (or run 'bash run.sh setup' as root)"
        )


def load_sentences(fortune_dir: str = FORTUNE_DIR, min_words: int = 4, max_words: int = 14) -> List[str]:
    """All usable normalized sentences of the fortune files in ``fortune_dir``, sorted."""
    root = Path(fortune_dir)
    files = sorted(
        p for p in root.glob("*")
        if p.is_file() and not p.is_symlink() and p.suffix == "" and p.name not in SKIPPED_FORTUNE_FILES
    )
    if not files:
        raise CorpusError(
            f"no fortune files in {fortune_dir}; install them with 'apt-get install fortunes-min fortunes'"
        )
    entries = []
    for path in files:
        entries.extend(split_fortune_file(path.read_text(encoding="latin-1")))
    return normalized_sentences(entries, min_words, max_words)


def eval_pool(sentences: Sequence[str]) -> Dict[str, List[str]]:
    """The fixed evaluation sentences per eval split, the same for every preset and seed."""
    pool = sorted(set(sentences))
    random.Random(EVAL_POOL_SEED).shuffle(pool)
    return {split: pool[k * EVAL_POOL_SLICE:(k + 1) * EVAL_POOL_SLICE] for k, split in enumerate(EVAL_SPLITS)}


def eval_pool_sentences(fortune_dir: str = FORTUNE_DIR) -> set:
    """Every sentence any preset may evaluate on (what an LM or a training split must not hold)."""
    return {text for texts in eval_pool(load_sentences(fortune_dir)).values() for text in texts}


def plan_corpus(sentences: Sequence[str], sizes: Dict[str, int], seed: int) -> List[Utterance]:
    """Assign sentences and a speaker, rate and pitch to every utterance of every split.

    Eval splits take the first sentences of their slice of the fixed pool; training splits take
    disjoint sentences from the rest, and unlabeled splits re-speak training sentences in another
    voice only once those run out."""
    pools = eval_pool(sentences)
    for split in EVAL_SPLITS:
        if sizes.get(split, 0) > len(pools[split]):
            raise CorpusError(f"the {split} split would need {sizes[split]} sentences but the evaluation pool "
                              f"holds {len(pools[split])} for it (at most {EVAL_POOL_SLICE})")
    reserved = {text for texts in pools.values() for text in texts}
    rng = random.Random(seed)
    train_pool = [text for text in sorted(set(sentences)) if text not in reserved]
    rng.shuffle(train_pool)
    # Labeled splits first, so that only unlabeled audio ever re-speaks a sentence.
    train_splits = sorted((s for s in sizes if s not in EVAL_SPLITS), key=lambda s: s.startswith("unlabeled"))
    unique = sum(sizes[s] for s in train_splits if not s.startswith("unlabeled"))
    if unique > len(train_pool) or not train_pool:
        labeled = [s for s in train_splits if not s.startswith("unlabeled")]
        raise CorpusError(
            f"the labeled splits ({', '.join(labeled)}) need {unique} sentences of their own but only "
            f"{len(train_pool)} are usable for training; choose smaller split sizes or install more fortune packages"
        )
    plan, speakers, cursor = [], {}, 0
    for split in [s for s in EVAL_SPLITS if s in sizes] + train_splits:
        voices, variants = (OOD_VOICES, OOD_VARIANTS) if split in OOD_SPLITS else (TRAIN_VOICES, TRAIN_VARIANTS)
        for i in range(sizes[split]):
            if split in EVAL_SPLITS:
                text = pools[split][i]
            else:
                text, cursor = train_pool[cursor % len(train_pool)], cursor + 1
            taken = speakers.setdefault(text, set())
            voice, variant = rng.choice(voices), rng.choice(variants)
            while f"{voice}+{variant}" in taken and len(taken) < len(voices) * len(variants):
                voice, variant = rng.choice(voices), rng.choice(variants)  # a re-spoken sentence, a new speaker
            taken.add(f"{voice}+{variant}")
            plan.append(Utterance(id=f"{split}-{i:06d}", split=split, text=text, voice=voice, variant=variant,
                                  rate=rng.randint(145, 185), pitch=rng.randint(35, 65)))
    return plan


def synthesize(utt: Utterance, wav_path: Path) -> None:
    """Speak ``utt`` with espeak-ng and write it as 16 kHz mono 16-bit WAV (atomically)."""
    wav_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = os.path.join(tmp, "raw.wav"), os.path.join(tmp, "out.wav")
        subprocess.run(
            ["espeak-ng", "-v", utt.speaker, "-s", str(utt.rate), "-p", str(utt.pitch), "-w", raw,
             utt.text.lower()],
            check=True, capture_output=True,
        )
        # -v 0.9 leaves headroom so that resampling does not clip; -R makes the dither repeatable.
        subprocess.run(
            ["sox", "-R", "-v", "0.9", raw, "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", out],
            check=True, capture_output=True,
        )
        shutil.move(out, wav_path)


def _is_complete_wav(path: Path) -> bool:
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError):
        return False
    return info.samplerate == SAMPLE_RATE and info.channels == 1 and info.frames > 0


BASE_SYMBOLS = ("|", "'") + tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def write_dictionary(path: Path, transcripts: Sequence[str]) -> None:
    """fairseq dict.ltr.txt: one symbol and its count per line, in a fixed (sorted) order.

    Every letter is listed, unseen ones with count 0, so that no split decodes to <unk>; the
    order does not depend on the counts, so every corpus (and importer) gives a symbol the same
    index and a checkpoint trained on one decodes the others."""
    counts = Counter({sym: 0 for sym in BASE_SYMBOLS})
    counts.update(sym for text in transcripts for sym in letters(text).split())
    write_lines(path, [f"{sym} {n}" for sym, n in sorted(counts.items())])


def _prepare_out_dir(out: Path, plan_json: dict, overwrite: bool) -> None:
    splits = plan_json["sizes"]
    plan_file = out / "corpus.json"
    if plan_file.exists():
        if json.loads(plan_file.read_text()) == plan_json:
            return  # same plan: resume
        if not overwrite:
            raise CorpusError(
                f"{plan_file} describes a different corpus (another preset, seed or size); "
                "choose a new --out directory, or pass --overwrite to replace it"
            )
    elif out.exists() and any(out.iterdir()) and not overwrite:
        raise CorpusError(
            f"{out} is not empty and holds no corpus.json; refusing to write into it. "
            "Choose a new --out directory, or pass --overwrite"
        )
    if overwrite and out.exists():
        for split in splits:
            shutil.rmtree(out / "wav" / split, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    write_lines(plan_file, [json.dumps(plan_json, indent=1)])


def build_corpus(
    out_dir: str,
    preset: str = "tiny",
    seed: int = 1,
    jobs: Optional[int] = None,
    overwrite: bool = False,
    progress: bool = True,
    fortune_dir: str = FORTUNE_DIR,
    sizes: Optional[Dict[str, int]] = None,
    subsets: Optional[Dict[str, Tuple[str, int]]] = None,
) -> Path:
    """Build (or finish building) the corpus of ``preset`` in ``out_dir``; return its path."""
    if sizes is None:
        if preset not in PRESETS:
            raise CorpusError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        sizes, subsets = PRESETS[preset], SUBSETS.get(preset, {}) if subsets is None else subsets
    subsets = subsets or {}
    for name, (parent, count) in subsets.items():
        if count > sizes.get(parent, 0):
            raise CorpusError(f"subset {name} takes {count} utterances of {parent}, which has {sizes.get(parent, 0)}")
    check_system_tools()
    out = Path(out_dir).resolve()
    plan = plan_corpus(load_sentences(fortune_dir), sizes, seed)
    plan_json = {"preset": preset, "seed": seed, "sizes": sizes, "subsets": {k: list(v) for k, v in subsets.items()},
                 "sample_rate": SAMPLE_RATE,
                 "utterances": [dataclasses.asdict(u) for u in plan]}
    _prepare_out_dir(out, plan_json, overwrite)

    todo = [u for u in plan if not _is_complete_wav(out / u.relpath)]
    if todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc=f"synthesizing {out.name}", unit="utt", disable=not progress)
        # Each synthesis is two subprocesses, so threads keep every core busy.
        with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
            for _ in pool.map(lambda u: synthesize(u, out / u.relpath), todo):
                bar.update()
        bar.close()

    manifests = {split: [u for u in plan if u.split == split] for split in sizes}
    manifests.update({name: manifests[parent][:count] for name, (parent, count) in subsets.items()})
    for split, utts in manifests.items():
        rows = [f"{u.relpath}\t{sf.info(str(out / u.relpath)).frames}" for u in utts]
        write_lines(out / f"{split}.tsv", [str(out)] + rows)
        write_lines(out / f"{split}.wrd", [u.text for u in utts])
        write_lines(out / f"{split}.ltr", [letters(u.text) for u in utts])
    write_dictionary(out / "dict.ltr.txt", [u.text for u in plan])
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output directory (created)")
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS), help="corpus size")
    parser.add_argument("--seed", type=int, default=1, help="decides sentences, speakers, rates")
    parser.add_argument("--jobs", type=int, default=None, help="parallel syntheses (default: all cores)")
    parser.add_argument("--overwrite", action="store_true", help="replace a different corpus in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        out = build_corpus(args.out, args.preset, args.seed, args.jobs, args.overwrite, not args.no_progress)
    except CorpusError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"corpus ready: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
