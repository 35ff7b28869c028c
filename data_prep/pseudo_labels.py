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


def load_teacher(checkpoint: str, data: str):
    import sslasr_plugin  # noqa: F401  (registers the plugin's models and tasks)
    from fairseq import checkpoint_utils

    models, _, task = checkpoint_utils.load_model_ensemble_and_task([checkpoint], arg_overrides={"data": data})
    model = models[0].eval()
    return model, task.target_dictionary


@torch.no_grad()
def teacher_paths(model, waves: List[np.ndarray], decoder=None, blank: int = 0):
    """Frame paths and their per-frame probabilities for a batch of waveforms: best paths, or
    with ``decoder`` (decoding.lm.LmBeamDecoder) the forced alignments of its transcripts."""
    from sslasr_plugin.decoding.ctc import best_paths, emissions

    lengths = torch.tensor([len(w) for w in waves])
    source = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        source[i, : len(w)] = torch.from_numpy(w)
    padding_mask = torch.arange(source.size(1))[None, :] >= lengths[:, None]
    lprobs, frames = emissions(model, {"source": source, "padding_mask": padding_mask})
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


def oracle_error_rates(data: str, split: str, out_dir: Path) -> Optional[dict]:
    """WER/CER of {split}.plab.ltr against the kept-aside {data}/{split}.ltr, if that exists."""
    from sslasr_plugin.decoding.report import error_rates
    from fairseq.data.data_utils import post_process

    reference = Path(data) / f"{split}.ltr"
    if not reference.exists():
        return None
    pairs = zip(reference.read_text().splitlines(), (out_dir / f"{split}.plab.ltr").read_text().splitlines())
    return error_rates([(post_process(ref, "letter"), post_process(hyp, "letter")) for ref, hyp in pairs])


def pseudo_label_split(model, dictionary, data: str, split: str, out: str, batch_size: int = 8,
                       overwrite: bool = False, progress: bool = True, decoder=None) -> Path:
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    finals = [out_dir / f"{split}.plab{ext}" for ext in ("", ".conf", ".ltr")]
    if finals[0].exists() and not overwrite:
        raise PseudoLabelError(f"{finals[0]} exists; pass --overwrite to label {split} again")
    partials = [p.with_name(p.name + ".partial") for p in finals]
    if overwrite:
        for p in partials:
            p.unlink(missing_ok=True)
    rows = audio_files(Path(data) / f"{split}.tsv")
    # Resume after the last row complete (newline-terminated) in every file; drop a torn row.
    texts = [p.read_text() if p.exists() else "" for p in partials]
    done = min(text.count("\n") for text in texts)
    for p, text in zip(partials, texts):
        p.write_text("".join(line + "\n" for line in text.split("\n")[:done]))
    blank, silence = dictionary.bos(), dictionary.index(SILENCE)

    from tqdm import tqdm

    with open(partials[0], "a") as labels_f, open(partials[1], "a") as conf_f, open(partials[2], "a") as ltr_f:
        bar = tqdm(total=len(rows), initial=done, desc=f"pseudo-labelling {split}", unit="utt", disable=not progress)
        for start in range(done, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            waves = []
            for path, _ in batch:
                wav, rate = sf.read(str(path), dtype="float32")
                if rate != 16000 or wav.ndim != 1:
                    raise PseudoLabelError(f"{path}: expected 16 kHz mono audio, found {rate} Hz, shape {wav.shape}")
                waves.append(wav)
            for path, probs in teacher_paths(model, waves, decoder, blank):
                path = np.where(path < dictionary.nspecial, blank, path)  # <pad>/</s>/<unk> count as blank
                labels = frame_labels_from_path(path, blank, silence)
                labels_f.write(" ".join(dictionary[i] for i in labels) + "\n")
                conf_f.write(" ".join(f"{p:.3f}" for p in probs) + "\n")
                ltr_f.write(transcript(path, blank, dictionary) + "\n")
            for f in (labels_f, conf_f, ltr_f):
                f.flush()
            bar.update(len(batch))
        bar.close()
    for p, final in zip(partials, finals):
        os.replace(p, final)
    return finals[0]


def frame_rate(model, sample_rate: int = 16000) -> float:
    seconds = 10
    frames = model.w2v_encoder.w2v_model._get_feat_extract_output_lengths(torch.tensor([seconds * sample_rate]))
    return round(float(frames) / seconds)


def pseudo_label(teacher: str, data: str, splits: Sequence[str], out: str, batch_size: int = 8,
                 overwrite: bool = False, progress: bool = True, lm: Optional[dict] = None) -> Path:
    """Label ``splits``; ``lm`` holds LmBeamDecoder's options (kenlm_model, lexicon, lm_weight, ...)
    to label with beam search and an n-gram LM instead of the best path."""
    model, dictionary = load_teacher(teacher, data)
    decoder = None
    if lm is not None:
        from sslasr_plugin.decoding.lm import LmBeamDecoder

        decoder = LmBeamDecoder(dictionary.symbols, dictionary.bos(), **lm)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Token classes: the teacher's symbols without fairseq's specials (<s> is the CTC blank).
    classes = [dictionary[i] for i in range(dictionary.nspecial, len(dictionary))]
    (out_dir / "dict.plab.txt").write_text("".join(f"{sym} 1\n" for sym in classes))
    meta = {"teacher": str(Path(teacher).resolve()), "label_rate": frame_rate(model), "data": str(Path(data).resolve()),
            "rule": ("best path" if lm is None else "forced alignment of the LM beam-search transcript") +
                    "; blank frames take the previous token (leading blanks: the first token); "
                    "no token at all: '|' on every frame",
            "lm": lm, "oracle_error_rates": {}}
    (out_dir / "plab.json").write_text(json.dumps(meta, indent=1) + "\n")
    for split in splits:
        pseudo_label_split(model, dictionary, data, split, out, batch_size, overwrite, progress, decoder)
        meta["oracle_error_rates"][split] = oracle_error_rates(data, split, out_dir)
    (out_dir / "plab.json").write_text(json.dumps(meta, indent=1) + "\n")
    return out_dir


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teacher", required=True, help="fine-tuned CTC checkpoint (sslasr_ctc or wav2vec_ctc)")
    parser.add_argument("--data", required=True, help="directory with {split}.tsv manifests")
    parser.add_argument("--splits", nargs="+", default=["unlabeled", "valid"])
    parser.add_argument("--out", required=True, help="output directory (task.label_dir of the CSL run)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--overwrite", action="store_true", help="label splits that already have labels again")
    parser.add_argument("--no-progress", action="store_true")
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
                           not args.no_progress, lm_options)
    except (PseudoLabelError, DataError, LmDecodingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"pseudo-labels ready: {out}")
    for split, rates in json.loads((out / "plab.json").read_text())["oracle_error_rates"].items():
        if rates is not None:
            print(f"{split}: pseudo-label WER {rates['wer']:.2f}, CER {rates['cer']:.2f} against {split}.ltr")
    return 0


if __name__ == "__main__":
    sys.exit(main())
