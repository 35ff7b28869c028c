"""CSL encoders compared under one protocol: the same batches of a split, both kinds of negatives.

Training logs give each arm's loss and retrieval accuracy under its own negatives and batching,
which do not compare across arms (whole-batch negatives make retrieval harder).  This evaluates
every checkpoint on the same label-aware batches (seed 1) of ``--split``, without masking or
dropout, with same-utterance and with whole-batch negatives:

    python examples/csl/eval_encoders.py --data data/demo --label-dir data/demo_pl \
        exp/csl/checkpoint_last.pt exp/csl_batch_negatives/checkpoint_last.pt

Prints one line per checkpoint and setting: loss (bits per anchor), retrieval accuracy (the
nearest sampled frame shares the anchor's pseudo-label), anchors.
"""
import argparse
import math
import sys
from pathlib import Path

import torch


def evaluate(checkpoint: str, data: str, label_dir: str, split: str, max_tokens: int):
    from fairseq import checkpoint_utils

    from sslasr_plugin.criterions.csl import CslCriterion, CslCriterionConfig

    models, _, task = checkpoint_utils.load_model_ensemble_and_task(
        [checkpoint], arg_overrides={"data": data, "label_dir": label_dir})
    model = models[0].eval()
    task.load_dataset(split)
    dataset = task.dataset(split)
    for negatives in ("same_utterance", "batch"):
        criterion = CslCriterion(CslCriterionConfig(temperature=0.1, negatives=negatives), task)
        batches = task.get_batch_iterator(dataset, max_tokens=max_tokens, seed=1, epoch=1).next_epoch_itr(shuffle=False)
        torch.manual_seed(0)  # the frames sampled per segment
        total = {"loss": 0.0, "anchors": 0, "retrieval_correct": 0}
        with torch.no_grad():
            for sample in batches:
                sample["net_input"]["mask"] = False
                _, _, log = criterion(model, sample)
                for key in total:
                    total[key] += log[key]
        anchors = max(total["anchors"], 1)
        yield negatives, total["loss"] / anchors / math.log(2), total["retrieval_correct"] / anchors, total["anchors"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", help="CSL pre-training checkpoints (sslasr_frame_model, projection head)")
    parser.add_argument("--data", required=True, help="manifest directory")
    parser.add_argument("--label-dir", required=True, help="frame pseudo-labels of the split (data_prep.pseudo_labels)")
    parser.add_argument("--split", default="valid")
    parser.add_argument("--max-tokens", type=int, default=640000)
    args = parser.parse_args()
    for path in args.checkpoints:
        if not Path(path).is_file():
            sys.exit(f"error: {path}: no such checkpoint")
    for path in args.checkpoints:
        for negatives, loss, retrieval, anchors in evaluate(
                path, str(Path(args.data).resolve()), str(Path(args.label_dir).resolve()), args.split, args.max_tokens):
            print(f"{path} negatives={negatives}: loss {loss:.3f} retrieval_acc {retrieval:.3f} anchors {anchors}")


if __name__ == "__main__":
    main()
