"""Text normalization for the synthetic corpus: sentences espeak-ng can speak exactly as written.

Sentences with digits, symbols or acronyms are rejected, punctuation dropped, words upper-cased;
letter labels follow fairseq's ``libri_labels.py`` (``H E L L O | W O R L D |``).  The full rule:
docs/design.md, "Text normalization".
"""
import re
from typing import Iterable, Iterator, List, Optional

ALLOWED = re.compile(r"^[A-Za-z\s',.;:!?\"()\-]+$")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
ACRONYM = re.compile(r"\b[A-Z]{2,}\b")
WORD = re.compile(r"[A-Z]+(?:'[A-Z]+)*")


def normalize_sentence(raw: str, min_words: int = 4, max_words: int = 14) -> Optional[str]:
    """Return the normalized upper-case sentence, or None when it must be rejected."""
    text = " ".join(raw.split())
    if not text or not ALLOWED.match(text) or ACRONYM.search(text):
        return None
    words = WORD.findall(text.replace("--", " ").replace("-", " ").upper())
    if not min_words <= len(words) <= max_words:
        return None
    return " ".join(words)


def split_fortune_file(content: str) -> Iterator[str]:
    """Yield the entries of a fortune(6) file (entries are separated by lines holding '%')."""
    entry: List[str] = []
    for line in content.splitlines():
        if line.strip() == "%":
            if entry:
                yield "\n".join(entry)
            entry = []
        else:
            entry.append(line)
    if entry:
        yield "\n".join(entry)


def sentences_of_entry(entry: str) -> Iterator[str]:
    """Yield raw sentences of one fortune, skipping attribution lines ("-- Mark Twain")."""
    body = " ".join(
        line.strip() for line in entry.splitlines() if not line.strip().startswith("--")
    )
    yield from SENTENCE_END.split(body)


def normalized_sentences(entries: Iterable[str], min_words: int = 4, max_words: int = 14) -> List[str]:
    """Normalize every sentence of every entry; return the unique survivors, sorted."""
    found = set()
    for entry in entries:
        for raw in sentences_of_entry(entry):
            norm = normalize_sentence(raw, min_words, max_words)
            if norm is not None:
                found.add(norm)
    return sorted(found)


def letters(sentence: str) -> str:
    """Letter label of a normalized sentence, fairseq style: 'HI YOU' -> 'H I | Y O U |'."""
    return " ".join(" ".join(word) + " |" for word in sentence.split())
