"""Frame-level pseudo-labels from a trained CTC teacher, for CSL and CE-PL.

    python -m data_prep.pseudo_labels --teacher exp/demo_ctc/checkpoint_best.pt \
        --data data/demo --splits unlabeled valid --out data/demo_pl

Writes into --out, in fairseq's hubert_pretraining label format:

    {split}.plab        one line per manifest row: one teacher token per encoder frame
    {split}.plab.conf   the teacher's probability of that frame's best-path symbol (blank included)
    dict.plab.txt       the token classes (the teacher's dictionary)
    plab.json           frame rate (task.label_rate), teacher checkpoint, labelling rule

Labelling rule (a blank frame takes the token before it): docs/design.md, "Frame pseudo-labels".

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
def teacher_paths(model, waves: List[np.ndarray]):
    """Best paths and their per-frame probabilities for a batch of waveforms."""
    from sslasr_plugin.decoding.ctc import best_paths, emissions

    lengths = torch.tensor([len(w) for w in waves])
    source = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        source[i, : len(w)] = torch.from_numpy(w)
    padding_mask = torch.arange(source.size(1))[None, :] >= lengths[:, None]
    lprobs, frames = emissions(model, {"source": source, "padding_mask": padding_mask})
    return [(path.numpy(), scores.exp().numpy()) for path, scores in best_paths(lprobs, frames)]


def pseudo_label_split(model, dictionary, data: str, split: str, out: str, batch_size: int = 8,
                       overwrite: bool = False, progress: bool = True) -> Path:
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    final, conf_final = out_dir / f"{split}.plab", out_dir / f"{split}.plab.conf"
    if final.exists() and not overwrite:
        raise PseudoLabelError(f"{final} exists; pass --overwrite to label {split} again")
    partial, conf_partial = out_dir / f"{split}.plab.partial", out_dir / f"{split}.plab.conf.partial"
    if overwrite:
        for p in (partial, conf_partial):
            p.unlink(missing_ok=True)
    rows = audio_files(Path(data) / f"{split}.tsv")
    # Resume after the last row complete (newline-terminated) in both files; drop a torn row.
    texts = [p.read_text() if p.exists() else "" for p in (partial, conf_partial)]
    done = min(text.count("\n") for text in texts)
    for p, text in zip((partial, conf_partial), texts):
        p.write_text("".join(line + "\n" for line in text.split("\n")[:done]))
    blank, silence = dictionary.bos(), dictionary.index(SILENCE)

    from tqdm import tqdm

    with open(partial, "a") as labels_f, open(conf_partial, "a") as conf_f:
        bar = tqdm(total=len(rows), initial=done, desc=f"pseudo-labelling {split}", unit="utt", disable=not progress)
        for start in range(done, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            waves = []
            for path, _ in batch:
                wav, rate = sf.read(str(path), dtype="float32")
                if rate != 16000 or wav.ndim != 1:
                    raise PseudoLabelError(f"{path}: expected 16 kHz mono audio, found {rate} Hz, shape {wav.shape}")
                waves.append(wav)
            for path, probs in teacher_paths(model, waves):
                path = np.where(path < dictionary.nspecial, blank, path)  # <pad>/</s>/<unk> count as blank
                labels = frame_labels_from_path(path, blank, silence)
                labels_f.write(" ".join(dictionary[i] for i in labels) + "\n")
                conf_f.write(" ".join(f"{p:.3f}" for p in probs) + "\n")
            labels_f.flush()
            conf_f.flush()
            bar.update(len(batch))
        bar.close()
    os.replace(partial, final)
    os.replace(conf_partial, conf_final)
    return final


def frame_rate(model, sample_rate: int = 16000) -> float:
    seconds = 10
    frames = model.w2v_encoder.w2v_model._get_feat_extract_output_lengths(torch.tensor([seconds * sample_rate]))
    return round(float(frames) / seconds)


def pseudo_label(teacher: str, data: str, splits: Sequence[str], out: str, batch_size: int = 8,
                 overwrite: bool = False, progress: bool = True) -> Path:
    model, dictionary = load_teacher(teacher, data)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Token classes: the teacher's symbols without fairseq's specials (<s> is the CTC blank).
    classes = [dictionary[i] for i in range(dictionary.nspecial, len(dictionary))]
    (out_dir / "dict.plab.txt").write_text("".join(f"{sym} 1\n" for sym in classes))
    meta = {"teacher": str(Path(teacher).resolve()), "label_rate": frame_rate(model), "data": str(Path(data).resolve()),
            "rule": "best path; blank frames take the previous token (leading blanks: the first token); "
                    "no token at all: '|' on every frame"}
    (out_dir / "plab.json").write_text(json.dumps(meta, indent=1) + "\n")
    for split in splits:
        pseudo_label_split(model, dictionary, data, split, out, batch_size, overwrite, progress)
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
    args = parser.parse_args(argv)
    try:
        out = pseudo_label(args.teacher, args.data, args.splits, args.out, args.batch_size, args.overwrite,
                           not args.no_progress)
    except (PseudoLabelError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"pseudo-labels ready: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
