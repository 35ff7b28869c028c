"""Source trees for the importer tests, built from the tiny corpus (shared by tests/unit and tests/recipes)."""
from pathlib import Path

import soundfile as sf

from sslasr_data.validate import read_manifest


def tiny_utterances(corpus: Path, split: str):
    """(audio, text) of a tiny-corpus split."""
    root, rows = read_manifest(str(corpus / f"{split}.tsv"))
    texts = (corpus / f"{split}.wrd").read_text().splitlines()
    return [(sf.read(str(Path(root) / rel))[0], text) for (_, rel, _), text in zip(rows, texts)]


def write_librispeech(folder: Path, utterances, speaker0=100):
    """LibriSpeech layout: SPEAKER/CHAPTER/SPEAKER-CHAPTER-UTT.flac + SPEAKER-CHAPTER.trans.txt;
    returns {utterance id: text}."""
    expected = {}
    for i, (audio, text) in enumerate(utterances):
        speaker, chapter = speaker0 + i % 2, 7
        chapter_dir = folder / str(speaker) / str(chapter)
        chapter_dir.mkdir(parents=True, exist_ok=True)
        utt = f"{speaker}-{chapter}-{i:04d}"
        sf.write(str(chapter_dir / f"{utt}.flac"), audio, 16000)
        with open(chapter_dir / f"{speaker}-{chapter}.trans.txt", "a") as f:
            f.write(f"{utt} {text}\n")
        expected[utt] = text
    return expected
