"""Frame alignments of transcribed audio and context-dependent letter classes: the targets of
CSL's frame teacher (examples/csl/teacher.yaml).

    python -m data_prep.align --ctc exp/demo_ctc/checkpoint_best.pt --data data/demo \
        --splits labeled valid --out data/demo_units --classes 500 --min-frames 30

1. Alignment.  A CTC model's forced alignment (torchaudio's ``forced_align``) of each
   transcript puts every letter and '|' on a spike of one or a few frames.  Segment rule: the
   boundary between two tokens is the midpoint between the end of one spike and the start of
   the next, so each token's segment is centred on its spike and covers the audio up to
   halfway to its neighbours; the first and last token reach as far back (forward) from their
   spike as they reach forward (back), and frames left before or after are a '|' (silence)
   segment.  Every frame belongs to exactly one segment, in the transcript's order.
2. Tying (data_prep.units): each token in context (letter, left and right letter, word
   position) is tied into at most --classes classes of at least --min-frames frames of the
   first split, by decision trees over 40-d log-mel statistics of the aligned frames.
3. Re-alignment with a frame teacher trained on those classes:

       python -m data_prep.align --realign-with exp/teacher/checkpoint_best.pt --units data/demo_units \
           --data data/demo --splits labeled valid --out data/demo_units_realigned

   keeps each utterance's class sequence and moves the boundaries to the teacher's best
   left-to-right path through its frame posteriors (Viterbi, every class at least one frame).
4. Other data in classes fitted before: --ctc with --units aligns --splits (none of them need be
   the fitted split) and labels their frames with the classes of --units' output, unchanged:

       python -m data_prep.align --ctc exp/demo_ctc/checkpoint_best.pt --units data/demo_units \
           --data data/demo --splits unlabeled valid --out data/demo_units_unlabeled

Writes into --out: {split}.ali (frames, then TOKEN:first-frame per segment), {split}.unit (one
class per encoder frame), dict.unit.txt, units.json (the classes and how they were made).
Resumable: alignment rows go to {split}.ali.partial and continue after the last complete row;
finished outputs are never overwritten without --overwrite.
"""
import argparse
import json
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from sslasr_data.files import write_lines, write_text
from sslasr_data.validate import DataError, audio_files

from .pseudo_labels import (PseudoLabelError, frame_log_probs, frame_rate, load_teacher, padded_batch, read_waves,
                            resume_rows)
from .units import SEPARATOR, TiedUnits, TyingError, Unit, contexts, tie_units

LABEL = "unit"
FBANK_MELS = 40


class AlignError(RuntimeError):
    pass


def spike_segments(spans: Sequence[Tuple[int, int]], frames: int) -> Tuple[List[int], bool, bool]:
    """The rule of CTC pseudo-labels (data_prep.pseudo_labels), for comparison: a token's segment
    runs from its spike to the next token's; frames before the first spike go to the first token."""
    return [0] + [start for start, _ in spans[1:]], False, False


def midpoint_segments(spans: Sequence[Tuple[int, int]], frames: int) -> Tuple[List[int], bool, bool]:
    """First frame of each token's segment, from its spike ``spans`` ((start, end) frames, end
    exclusive, in order) in ``frames`` frames; and whether a leading / trailing silence segment
    takes the frames outside (the rule: module docstring)."""
    bounds = [(end + next_start) // 2 for (_, end), (next_start, _) in zip(spans[:-1], spans[1:])]
    first = spans[0][0] - ((bounds[0] - spans[0][1]) if bounds else 0)
    last = spans[-1][1] + ((spans[-1][0] - bounds[-1]) if bounds else 0)
    lead, trail = first > 0, last < frames
    return ([0] if lead else []) + [max(first, 0)] + bounds + ([last] if trail else []), lead, trail


SEGMENT_RULES = {"midpoint": midpoint_segments, "spike": spike_segments}


def viterbi_segments(lprobs: np.ndarray, classes: Sequence[int]) -> List[int]:
    """First frame of each of ``classes`` (column indices, in order) on the best left-to-right
    path through ``lprobs`` (T, C) that gives every class at least one frame."""
    frames, k = lprobs.shape[0], len(classes)
    if frames < k:
        raise AlignError(f"{frames} frames cannot hold {k} segments")
    emit = lprobs[:, classes]  # (T, K)
    score = np.full(k, -np.inf)
    score[0] = emit[0, 0]
    moved = np.zeros((frames, k), dtype=bool)
    for t in range(1, frames):
        advance = np.r_[-np.inf, score[:-1]]
        moved[t] = advance > score
        score = np.maximum(score, advance) + emit[t]
    starts, j = [0] * k, k - 1
    for t in range(frames - 1, 0, -1):
        if moved[t, j]:
            starts[j] = t
            j -= 1
    return starts


def ctc_alignment(lprobs: torch.Tensor, tokens: List[int], blank: int, rule: str = "midpoint"
                  ) -> Tuple[List[int], bool, bool]:
    """Segments (``rule``: SEGMENT_RULES) of ``tokens`` through one utterance's CTC log-probs (T, V)."""
    from torchaudio.functional import forced_align, merge_tokens

    path, scores = forced_align(lprobs[None].float().contiguous(), torch.tensor([tokens]), blank=blank)
    spans = merge_tokens(path[0], scores[0].exp(), blank=blank)
    if len(spans) != len(tokens):
        raise AlignError(f"the alignment has {len(spans)} spikes for {len(tokens)} tokens")
    return SEGMENT_RULES[rule]([(s.start, s.end) for s in spans], lprobs.size(0))


def format_ali(frames: int, tokens: Sequence[str], starts: Sequence[int]) -> str:
    return f"{frames}\t" + " ".join(f"{t}:{s}" for t, s in zip(tokens, starts))


def parse_ali(line: str, where: str) -> Tuple[int, List[str], List[int]]:
    """(frames, tokens, first frames) of one {split}.ali line."""
    try:
        frames, body = line.split("\t")
        pairs = [item.rsplit(":", 1) for item in body.split()]
        return int(frames), [t for t, _ in pairs], [int(s) for _, s in pairs]
    except ValueError:
        raise AlignError(f"{where}: '{line[:60]}' is not an alignment line (FRAMES<TAB>TOKEN:START ...); "
                         "align again with --overwrite") from None


def segment_labels(frames: int, starts: Sequence[int], labels: Sequence[str]) -> List[str]:
    """One label per frame: each segment's label from its first frame to the next segment's."""
    ends = list(starts[1:]) + [frames]
    return [lab for lab, a, b in zip(labels, starts, ends) for _ in range(b - a)]


def _align_rows(model, dictionary, rows, transcripts, realign, rule, batch_size, start, write, where, progress):
    """Align rows[start:] (CTC, or ``realign`` = (previous alignment lines, class index of each unit))
    and ``write`` each row's .ali line."""
    from tqdm import tqdm

    from sslasr_plugin.decoding.ctc import emissions

    bar = tqdm(total=len(rows), initial=start, desc=f"aligning {where}", unit="utt", disable=not progress)
    for first in range(start, len(rows), batch_size):
        waves = read_waves(path for path, _ in rows[first:first + batch_size])
        if realign is None:
            with torch.no_grad():
                lprobs, lengths = emissions(model, padded_batch(waves))
            outputs = [lprobs[i, : int(lengths[i])] for i in range(len(waves))]
        else:
            outputs = frame_log_probs(model, waves, dictionary.nspecial)
        for i, out in enumerate(outputs):
            n = first + i
            line_no = f"{where}:{n + 1}"
            if realign is None:
                tokens = transcripts[n].split()
                unknown = [t for t in tokens if dictionary.index(t) == dictionary.unk()]
                if not tokens or unknown:
                    raise AlignError(f"{line_no}: {'no transcript' if not tokens else f'symbols {unknown} are not in the CTC dictionary'}")
                try:
                    starts, lead, trail = ctc_alignment(out, [dictionary.index(t) for t in tokens], dictionary.bos(), rule)
                except (RuntimeError, AlignError) as err:
                    raise AlignError(f"{line_no}: cannot align its {len(tokens)} tokens to {out.size(0)} frames "
                                     f"({str(err).splitlines()[0]})") from None
                tokens = [SEPARATOR] * lead + tokens + [SEPARATOR] * trail
            else:
                previous, class_index = realign
                _, tokens, _ = parse_ali(previous[n], line_no)
                units = contexts(tokens)
                try:
                    starts = viterbi_segments(out.numpy(), [class_index[u] for u in units])
                except AlignError as err:
                    raise AlignError(f"{line_no}: {err}") from None
            write(format_ali(out.size(0), tokens, starts))
        bar.update(len(waves))
    bar.close()


def align_split(model, dictionary, data: str, split: str, out_dir: Path, batch_size: int, overwrite: bool,
                progress: bool, realign=None, rule: str = "midpoint") -> Path:
    """{split}.ali, resumable: kept if finished (and not ``overwrite``), else continued."""
    final = out_dir / f"{split}.ali"
    if final.exists() and not overwrite:
        return final
    partial = final.with_name(final.name + ".partial")
    rows = audio_files(Path(data) / f"{split}.tsv")
    transcripts = None
    if realign is None:
        transcripts = _transcripts(Path(data) / f"{split}.ltr", len(rows))
    elif len(realign[0]) != len(rows):
        raise AlignError(f"the --units alignment of {split} has {len(realign[0])} rows, {Path(data) / split}.tsv "
                         f"{len(rows)}: --units must be data_prep.align's output for this data's {split}")
    start = resume_rows([partial], overwrite)
    with open(partial, "a") as f:
        def write(line):
            f.write(line + "\n")
            f.flush()

        _align_rows(model, dictionary, rows, transcripts, realign, rule, batch_size, start, write, str(final),
                    progress)
    os.replace(partial, final)
    return final


def _transcripts(path: Path, rows: int) -> List[str]:
    if not path.exists():
        raise AlignError(f"{path} does not exist: alignment needs the transcripts of every split it aligns")
    lines = path.read_text().splitlines()
    if len(lines) != rows:
        raise AlignError(f"{path} has {len(lines)} lines but {path.with_suffix('.tsv')} lists {rows} files")
    return lines


def log_mel_frames(wave: np.ndarray, frames: int) -> np.ndarray:
    """40-d log-mel (25 ms / 10 ms) averaged over each encoder frame: (frames, 40); encoder frame
    t takes the 10 ms frames 2t and 2t + 1 (the encoders run at 50 frames/s)."""
    from torchaudio.compliance.kaldi import fbank

    feats = fbank(torch.from_numpy(wave)[None] * 32768, num_mel_bins=FBANK_MELS, dither=0.0).numpy()
    owner = np.minimum(np.arange(len(feats)) // 2, frames - 1)
    sums = np.zeros((frames, FBANK_MELS))
    np.add.at(sums, owner, feats)
    counts = np.maximum(np.bincount(owner, minlength=frames), 1)[:, None]
    return sums / counts


def unit_statistics(data: str, split: str, alignments: List[str]) -> Dict[Unit, np.ndarray]:
    """Per unit: frame count, sum and sum of squares of the log-mel frames of its segments."""
    stats: Dict[Unit, np.ndarray] = {}
    rows = audio_files(Path(data) / f"{split}.tsv")
    for n, ((path, _), line) in enumerate(zip(rows, alignments)):
        frames, tokens, starts = parse_ali(line, f"{split}.ali:{n + 1}")
        feats = log_mel_frames(read_waves([path])[0], frames)
        ends = starts[1:] + [frames]
        for unit, a, b in zip(contexts(tokens), starts, ends):
            x = feats[a:b]
            s = np.concatenate([[len(x)], x.sum(0), (x ** 2).sum(0)])
            stats[unit] = stats[unit] + s if unit in stats else s
    return stats


def _unit_key(unit: Unit) -> str:
    return " ".join(unit)


def write_labels(out_dir: Path, split: str, tied: TiedUnits) -> Path:
    """{split}.unit from {split}.ali: every frame's class."""
    lines = []
    for n, line in enumerate((out_dir / f"{split}.ali").read_text().splitlines()):
        frames, tokens, starts = parse_ali(line, f"{split}.ali:{n + 1}")
        labels = [tied(u) for u in contexts(tokens)]
        lines.append(" ".join(segment_labels(frames, starts, labels)))
    path = out_dir / f"{split}.{LABEL}"
    write_lines(path, lines)
    return path


def align(data: str, splits: Sequence[str], out: str, ctc: Optional[str] = None, classes: int = 500,
          min_frames: int = 30, realign_with: Optional[str] = None, units: Optional[str] = None,
          batch_size: int = 8, overwrite: bool = False, progress: bool = True, rule: str = "midpoint") -> Path:
    """Align ``splits`` and label their frames with tied classes (fitted on ``splits[0]``, or
    ``units``' classes, an earlier output's, where given); with ``realign_with`` (a frame teacher)
    and ``units``, re-align that output's alignment instead."""
    out_dir = Path(out)
    meta_path = out_dir / "units.json"
    if meta_path.exists() and not overwrite:
        raise AlignError(f"{meta_path} exists; pass --overwrite to align again")
    if (ctc is None) == (realign_with is None):
        raise AlignError("give either --ctc (a CTC model aligns the transcripts; with --units, into that earlier "
                         "output's classes) or --realign-with and --units")
    if realign_with is not None and units is None:
        raise AlignError("--realign-with needs --units, the output of the alignment to refine")
    if units is not None:
        previous = Path(units) / "units.json"
        if not previous.exists():
            raise AlignError(f"{previous} does not exist; --units must be an output directory of data_prep.align")
        earlier = json.loads(previous.read_text())
        names = {tuple(k.split(" ")): v for k, v in earlier["units"].items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    rule_text = f"CTC forced alignment, segment rule '{rule}' (data_prep/align.py)"
    if realign_with is None:
        model, dictionary = load_teacher(ctc, data)
        if units is not None and earlier["label_rate"] != frame_rate(model):
            raise AlignError(f"{ctc} makes {frame_rate(model)} frames/s but the classes of {previous} label "
                             f"{earlier['label_rate']}: align with a CTC model of the encoder that made them")
        for split in splits:
            align_split(model, dictionary, data, split, out_dir, batch_size, overwrite, progress, rule=rule)
        if units is None:
            alignments = (out_dir / f"{splits[0]}.ali").read_text().splitlines()
            names = tie_units(unit_statistics(data, splits[0], alignments), classes, min_frames)
            meta = {"aligner": str(Path(ctc).resolve()), "fit_split": splits[0], "classes_asked": classes,
                    "min_frames": min_frames, "label_rate": frame_rate(model), "rule": rule_text}
        else:  # the earlier output's classes (its fit_split, classes_asked, min_frames) on these splits
            meta = dict(earlier, aligner=str(Path(ctc).resolve()), classes_from=str(Path(units).resolve()),
                        rule=rule_text)
    else:
        model, dictionary = load_teacher(realign_with, data)
        missing = sorted({v for v in names.values()} - set(dictionary.symbols))
        if missing:
            raise AlignError(f"{realign_with} does not predict the classes {missing[:5]} of {previous}: "
                             "re-align with a teacher trained on these labels")
        tied = TiedUnits(names)
        for split in splits:
            old = (Path(units) / f"{split}.ali").read_text().splitlines()
            index = {u: dictionary.index(tied(u)) - dictionary.nspecial
                     for line in old for u in contexts(parse_ali(line, str(Path(units) / f"{split}.ali"))[1])}
            align_split(model, dictionary, data, split, out_dir, batch_size, overwrite, progress, (old, index))
        meta = dict(earlier, aligner=str(Path(realign_with).resolve()), realigned_from=str(Path(units).resolve()),
                    rule="Viterbi re-alignment of the class sequence through the frame teacher's posteriors")
    for split in splits:
        write_labels(out_dir, split, TiedUnits(names))
    counts: Dict[str, int] = {}
    for line in (out_dir / f"{splits[0]}.{LABEL}").read_text().splitlines():
        for c in line.split():
            counts[c] = counts.get(c, 0) + 1
    class_names = sorted(set(names.values()))
    write_text(out_dir / f"dict.{LABEL}.txt", "".join(f"{c} {counts.get(c, 0)}\n" for c in class_names))
    meta.update(classes=len(class_names), counted_split=splits[0],
                frames_per_class={c: counts.get(c, 0) for c in class_names},
                units={_unit_key(u): v for u, v in sorted(names.items())})
    write_text(meta_path, json.dumps(meta, indent=1) + "\n")
    return out_dir


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="directory with {split}.tsv and {split}.ltr")
    parser.add_argument("--splits", nargs="+", default=["labeled", "valid"],
                        help="splits to align; the classes are fitted on the first (unless --units gives them)")
    parser.add_argument("--out", required=True, help="output directory (task.label_dir of the teacher's training)")
    parser.add_argument("--ctc", help="CTC checkpoint that aligns the transcripts")
    parser.add_argument("--classes", type=int, default=500, help="most context-dependent classes (tens to thousands)")
    parser.add_argument("--min-frames", type=int, default=30, help="fewest frames of the first split per class")
    parser.add_argument("--segments", choices=sorted(SEGMENT_RULES), default="midpoint",
                        help="midpoint: boundaries halfway between CTC spikes; spike: from one spike to the next "
                        "(the CTC pseudo-labels' rule, for comparison)")
    parser.add_argument("--realign-with", help="frame teacher checkpoint that re-aligns --units' alignment")
    parser.add_argument("--units", help="an earlier output directory of this tool: with --realign-with, the alignment "
                        "to refine; with --ctc, the classes to label --splits with (none are fitted)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--overwrite", action="store_true", help="replace finished outputs in --out")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        out = align(args.data, args.splits, args.out, args.ctc, args.classes, args.min_frames, args.realign_with,
                    args.units, args.batch_size, args.overwrite, not args.no_progress, args.segments)
    except (AlignError, TyingError, PseudoLabelError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    meta = json.loads((out / "units.json").read_text())
    print(f"alignments and {meta['classes']} classes ready: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
