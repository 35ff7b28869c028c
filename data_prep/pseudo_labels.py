"""Frame-level pseudo-labels from a trained CTC teacher, for CSL and CE-PL.

    python -m data_prep.pseudo_labels --teacher exp/demo_ctc/checkpoint_best.pt \
        --data data/demo --splits unlabeled valid --out data/demo_pl

Writes into --out, in fairseq's hubert_pretraining label format:

    {split}.plab        one line per manifest row: one teacher token per encoder frame
    {split}.plab.conf   the teacher's probability of that frame's best-path symbol (blank included)
    dict.plab.txt       the token classes (the teacher's dictionary)
    {split}.plab.ltr    the transcript those labels spell, in letters (the best path's, or the LM's)
    plab.json           frame rate (task.label_rate), teacher checkpoint, labelling rule, and the
                        pseudo-labels' WER/CER against {data}/{split}.ltr where that exists
                        (the unlabeled transcripts kept aside for analysis)

Labelling rule (a blank frame takes the token before it): docs/design.md, "Frame pseudo-labels".
With an n-gram LM (``--kenlm-model``, ``--lexicon``; data_prep.lm builds them) the transcript
comes from beam search and the frame path from its forced alignment:

    python -m data_prep.pseudo_labels --teacher exp/demo_ctc/checkpoint_best.pt --data data/demo \
        --splits unlabeled valid --out data/demo_pl_lm \
        --kenlm-model data/lm/word.bin --lexicon data/lm/lexicon.txt --lm-weight 2 --word-score 0

A frame teacher (``examples/csl/teacher.yaml``: frame cross-entropy on context-dependent
letter classes of the labeled data, ``python -m data_prep.align``) labels each frame with its
most probable class; ``--posteriors`` also writes every frame's class posteriors
({split}.plab.post, float16 rows in dict.plab.txt's order).

Resumable: rows are appended (and flushed) to {split}.plab.partial; a rerun continues after the
last complete row and renames the files when the split is done.  Finished outputs are never
overwritten without --overwrite.
"""
import argparse
import json
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import soundfile as sf
import torch

from data_prep.units import class_letter
from sslasr_data.files import write_text
from sslasr_data.validate import DataError, audio_files

SILENCE = "|"


class PseudoLabelError(RuntimeError):
    pass


def frame_labels_from_path(path: np.ndarray, blank: int, silence: int) -> np.ndarray:
    """Give every frame of a best path a token: blanks take the token before (first: after)."""
    tokens = path != blank
    if not tokens.any():
        return np.full_like(path, silence)
    idx = np.where(tokens, np.arange(len(path)), -1)
    idx = np.maximum.accumulate(idx)  # index of the last token at or before each frame
    idx[idx < 0] = np.flatnonzero(tokens)[0]
    return path[idx]


def resume_rows(partials: Sequence[Path], overwrite: bool) -> int:
    """Rows already complete (newline-terminated) in every one of ``partials``, which are cut
    back to them (a torn last row is dropped); with ``overwrite`` they start empty."""
    texts = ["" if overwrite or not p.exists() else p.read_text() for p in partials]
    done = min(text.count("\n") for text in texts)
    for p, text in zip(partials, texts):
        p.write_text("".join(line + "\n" for line in text.split("\n")[:done]))
    return done


def read_waves(paths) -> List[np.ndarray]:
    waves = []
    for path in paths:
        wav, rate = sf.read(str(path), dtype="float32")
        if rate != 16000 or wav.ndim != 1:
            raise PseudoLabelError(f"{path}: expected 16 kHz mono audio, found {rate} Hz, shape {wav.shape}")
        waves.append(wav)
    return waves


def load_teacher(checkpoint: str, data: str):
    import sslasr_plugin  # noqa: F401  (registers the plugin's models and tasks)
    from fairseq import checkpoint_utils

    models, _, task = checkpoint_utils.load_model_ensemble_and_task([checkpoint], arg_overrides={"data": data})
    model = models[0].eval()
    if is_frame_teacher(model):
        return model, task.dictionaries[0]
    return model, task.target_dictionary


def is_frame_teacher(model) -> bool:
    """A frame-level classifier (sslasr_frame_model with the classifier head, trained with frame
    cross-entropy: examples/csl/teacher.yaml), not a CTC model."""
    return getattr(getattr(model, "cfg", None), "head", None) == "classifier"


def padded_batch(waves: List[np.ndarray]):
    lengths = torch.tensor([len(w) for w in waves])
    source = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        source[i, : len(w)] = torch.from_numpy(w)
    return {"source": source, "padding_mask": torch.arange(source.size(1))[None, :] >= lengths[:, None]}


@torch.no_grad()
def frame_log_probs(model, waves: List[np.ndarray], nspecial: int) -> List[torch.Tensor]:
    """A frame teacher's log-posteriors (T, classes) per waveform, unmasked; fairseq's special
    symbols (never a target) are left out, so column j is dictionary symbol ``nspecial + j``."""
    logits, padding_mask = model.frame_outputs(**padded_batch(waves), mask=False)
    lprobs = torch.log_softmax(logits[..., nspecial:].float(), dim=-1)
    frames = (~padding_mask).sum(1) if padding_mask is not None else [lprobs.size(1)] * len(waves)
    return [lprobs[i, : int(frames[i])] for i in range(len(waves))]


@torch.no_grad()
def teacher_paths(model, waves: List[np.ndarray], decoder=None, blank: int = 0):
    """Frame paths and their per-frame probabilities for a batch of waveforms: best paths, or
    with ``decoder`` (decoding.lm.LmBeamDecoder) the forced alignments of its transcripts."""
    from sslasr_plugin.decoding.ctc import best_paths, emissions

    lprobs, frames = emissions(model, padded_batch(waves))
    if decoder is None:
        return [(path.numpy(), scores.exp().numpy()) for path, scores in best_paths(lprobs, frames)]
    from sslasr_plugin.decoding.lm import aligned_path

    paths = []
    for i, hypo in enumerate(decoder(lprobs, frames, blank)):
        frame_lprobs = lprobs[i, : frames[i]]
        path = aligned_path(frame_lprobs, hypo["tokens"], blank)
        paths.append((path.numpy(), frame_lprobs.gather(-1, path[:, None])[:, 0].exp().numpy()))
    return paths


def transcript(path: np.ndarray, blank: int, dictionary) -> str:
    """The letters a frame path spells (repeats merged, blanks removed), as in {split}.ltr."""
    runs = path[np.r_[True, path[1:] != path[:-1]]]
    return " ".join(dictionary[i] for i in runs if i != blank)


def letter_runs(ltr: str) -> str:
    """A letter per run of one letter: a frame teacher's class-run transcript read without the
    letters that a class flickering within one letter repeats (a doubled letter is read once)."""
    tokens = ltr.split()
    return " ".join(t for i, t in enumerate(tokens) if i == 0 or t != tokens[i - 1])


def oracle_error_rates(data: str, split: str, out_dir: Path, frame_teacher: bool = False) -> Optional[dict]:
    """WER/CER of {split}.plab.ltr against the kept-aside {data}/{split}.ltr, if that exists.  For a
    frame teacher also ``letter_runs``: the same read a letter per run of one letter, since one
    class per letter run reads a flickering class as insertions (on the true alignment of the
    low-resource corpus 0.3% CER by class runs and 2.5% by letter runs; docs/results/csl.md)."""
    from sslasr_plugin.decoding.report import error_rates
    from fairseq.data.data_utils import post_process

    reference = Path(data) / f"{split}.ltr"
    if not reference.exists():
        return None
    pairs = list(zip(reference.read_text().splitlines(), (out_dir / f"{split}.plab.ltr").read_text().splitlines()))
    rates = error_rates([(post_process(ref, "letter"), post_process(hyp, "letter")) for ref, hyp in pairs])
    if frame_teacher:
        rates["letter_runs"] = error_rates([(post_process(ref, "letter"), post_process(letter_runs(hyp), "letter"))
                                            for ref, hyp in pairs])
    return rates


def class_transcript(labels: np.ndarray, dictionary) -> str:
    """The letters a frame teacher's class path spells: a letter per run of one class, read
    from the class name ('<letter>_<k>', data_prep.units); '|' separates words."""
    runs = labels[np.r_[True, labels[1:] != labels[:-1]]]
    return " ".join(class_letter(dictionary[i]) for i in runs)


def pseudo_label_split(model, dictionary, data: str, split: str, out: str, batch_size: int = 8,
                       overwrite: bool = False, progress: bool = True, decoder=None, posteriors: bool = False) -> Path:
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    finals = [out_dir / f"{split}.plab{ext}" for ext in ("", ".conf", ".ltr")]
    if finals[0].exists() and not overwrite:
        raise PseudoLabelError(f"{finals[0]} exists; pass --overwrite to label {split} again")
    partials = [p.with_name(p.name + ".partial") for p in finals]
    rows = audio_files(Path(data) / f"{split}.tsv")
    done = resume_rows(partials, overwrite)
    frame_teacher = is_frame_teacher(model)
    classes = len(dictionary) - dictionary.nspecial
    post_final = out_dir / f"{split}.plab.post"
    post = post_final.with_name(post_final.name + ".partial")
    if posteriors:
        if not frame_teacher:
            raise PseudoLabelError("--posteriors needs a frame teacher (examples/csl/teacher.yaml); a CTC "
                                   "teacher's frames are not class posteriors")
        # The float16 rows of the complete label rows only: cut a torn tail.  (Posteriors are
        # flushed before labels, so a label row on disk has its posteriors.)
        need = 2 * classes * sum(len(line.split()) for line in partials[0].read_text().splitlines())
        have = post.stat().st_size if post.exists() else 0
        if have < need:
            raise PseudoLabelError(f"{post} holds the posteriors of fewer frames than {partials[0]} labels "
                                   f"({have} of {need} bytes): the labeling so far ran without --posteriors; pass "
                                   f"--overwrite to label {split} again with them")
        with open(post, "ab") as f:
            f.truncate(need)
    blank = dictionary.bos()

    from tqdm import tqdm

    with open(partials[0], "a") as labels_f, open(partials[1], "a") as conf_f, open(partials[2], "a") as ltr_f, \
            open(post if posteriors else os.devnull, "ab") as post_f:
        bar = tqdm(total=len(rows), initial=done, desc=f"pseudo-labelling {split}", unit="utt", disable=not progress)
        for start in range(done, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            waves = read_waves(path for path, _ in batch)
            if frame_teacher:
                for lprobs in frame_log_probs(model, waves, dictionary.nspecial):
                    best, labels = lprobs.max(-1)
                    labels = labels.numpy() + dictionary.nspecial
                    labels_f.write(" ".join(dictionary[i] for i in labels) + "\n")
                    conf_f.write(" ".join(f"{p:.3f}" for p in best.exp().numpy()) + "\n")
                    ltr_f.write(class_transcript(labels, dictionary) + "\n")
                    post_f.write(lprobs.exp().numpy().astype(np.float16).tobytes())
            else:
                for path, probs in teacher_paths(model, waves, decoder, blank):
                    path = np.where(path < dictionary.nspecial, blank, path)  # <pad>/</s>/<unk> count as blank
                    labels = frame_labels_from_path(path, blank, dictionary.index(SILENCE))
                    labels_f.write(" ".join(dictionary[i] for i in labels) + "\n")
                    conf_f.write(" ".join(f"{p:.3f}" for p in probs) + "\n")
                    ltr_f.write(transcript(path, blank, dictionary) + "\n")
            for f in (post_f, conf_f, ltr_f, labels_f):  # the label rows last: they mark what is done
                f.flush()
            bar.update(len(batch))
        bar.close()
    if posteriors:
        os.replace(post, post_final)
    for p, final in zip(partials, finals):
        os.replace(p, final)
    return finals[0]


def frame_rate(model, sample_rate: int = 16000) -> float:
    seconds = 10
    encoder = model if is_frame_teacher(model) else model.w2v_encoder.w2v_model
    frames = encoder._get_feat_extract_output_lengths(torch.tensor([seconds * sample_rate]))
    return round(float(frames) / seconds)


def pseudo_label(teacher: str, data: str, splits: Sequence[str], out: str, batch_size: int = 8,
                 overwrite: bool = False, progress: bool = True, lm: Optional[dict] = None,
                 posteriors: bool = False) -> Path:
    """Label ``splits``; ``lm`` holds LmBeamDecoder's options (kenlm_model, lexicon, lm_weight, ...)
    to label with beam search and an n-gram LM instead of the best path.  A frame teacher labels
    each frame with its most probable class (``posteriors``: and writes all its posteriors)."""
    model, dictionary = load_teacher(teacher, data)
    decoder = None
    if lm is not None and is_frame_teacher(model):
        raise PseudoLabelError(f"{teacher} is a frame teacher: its labels are per-frame classes, no LM applies")
    if lm is not None:
        from sslasr_plugin.decoding.lm import LmBeamDecoder

        decoder = LmBeamDecoder(dictionary.symbols, dictionary.bos(), **lm)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Token classes: the teacher's symbols without fairseq's specials (<s> is the CTC blank).
    frame_teacher = is_frame_teacher(model)
    rule = ("frame teacher: each frame's most probable class" if frame_teacher else
            ("best path" if lm is None else "forced alignment of the LM beam-search transcript") +
            "; blank frames take the previous token (leading blanks: the first token); no token at all: '|' on every frame")
    classes = [dictionary[i] for i in range(dictionary.nspecial, len(dictionary))]
    write_text(out_dir / "dict.plab.txt", "".join(f"{sym} 1\n" for sym in classes))
    meta = {"teacher": str(Path(teacher).resolve()), "label_rate": frame_rate(model), "data": str(Path(data).resolve()),
            "rule": rule, "lm": lm, "oracle_error_rates": {}}
    if posteriors:
        meta["posteriors"] = ("{split}.plab.post: float16, one row of len(dict.plab.txt) posteriors per frame "
                              "(the dictionary's order), the rows of all utterances in manifest order")
    write_text(out_dir / "plab.json", json.dumps(meta, indent=1) + "\n")
    for split in splits:
        pseudo_label_split(model, dictionary, data, split, out, batch_size, overwrite, progress, decoder, posteriors)
        meta["oracle_error_rates"][split] = oracle_error_rates(data, split, out_dir, frame_teacher)
    write_text(out_dir / "plab.json", json.dumps(meta, indent=1) + "\n")
    return out_dir


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teacher", required=True, help="fine-tuned CTC checkpoint (sslasr_ctc or wav2vec_ctc), "
                        "or a frame teacher (examples/csl/teacher.yaml)")
    parser.add_argument("--data", required=True, help="directory with {split}.tsv manifests")
    parser.add_argument("--splits", nargs="+", default=["unlabeled", "valid"])
    parser.add_argument("--out", required=True, help="output directory (task.label_dir of the CSL run)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--overwrite", action="store_true", help="label splits that already have labels again")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--posteriors", action="store_true",
                        help="frame teacher: also write every frame's class posteriors ({split}.plab.post, float16)")
    lm = parser.add_argument_group("beam search with an n-gram LM (python -m data_prep.lm builds one)")
    lm.add_argument("--kenlm-model", help="word LM (with --lexicon) or letter LM; none: best path")
    lm.add_argument("--lexicon", help="lexicon of the word LM")
    lm.add_argument("--beam", type=int, default=50)
    lm.add_argument("--lm-weight", type=float, default=2.0)
    lm.add_argument("--word-score", type=float, default=0.0)
    lm.add_argument("--sil-weight", type=float, default=0.0)
    lm.add_argument("--beam-threshold", type=float, default=25.0, help="prune hypotheses this far below the best")
    args = parser.parse_args(argv)
    lm_options = None if args.kenlm_model is None else {
        "kenlm_model": args.kenlm_model, "lexicon": args.lexicon, "beam": args.beam, "lm_weight": args.lm_weight,
        "word_score": args.word_score, "sil_weight": args.sil_weight, "beam_threshold": args.beam_threshold}
    from sslasr_plugin.decoding.lm import LmDecodingError

    try:
        out = pseudo_label(args.teacher, args.data, args.splits, args.out, args.batch_size, args.overwrite,
                           not args.no_progress, lm_options, args.posteriors)
    except (PseudoLabelError, DataError, LmDecodingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"pseudo-labels ready: {out}")
    for split, rates in json.loads((out / "plab.json").read_text())["oracle_error_rates"].items():
        if rates is not None:
            line = f"{split}: pseudo-label WER {rates['wer']:.2f}, CER {rates['cer']:.2f} against {split}.ltr"
            if "letter_runs" in rates:
                runs = rates["letter_runs"]
                line += (f" (a letter per run of one class); WER {runs['wer']:.2f}, CER {runs['cer']:.2f} "
                         "read a letter per run of one letter (a doubled letter once)")
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
