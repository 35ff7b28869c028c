"""Step time of continuous pseudo-labeling (slimIPL, soft labels) against the stock CTC step.

fairseq Trainers in one process (``inprocess.py``), on the same model (examples/slimipl's, which
is examples/ctc/scratch_fbank.yaml's), started from the same weights (``--init``, the main job's
model, so that pseudo-labels have realistic lengths), stepping the same batches of ``labeled``
in turn.  The pseudo-labeling arms label the labeled split's own audio
(``task.unlabeled_subsets='' task.unsup_on_labeled=true``), so every arm trains on the same
utterances.  The kinds of update the ``sslasr_slimipl`` task makes:

* ``labeled``: a CTC update on labeled data (``+variant=supervised_only``);
* ``*_label``: label the incoming batch (eval-mode forward, greedy CTC or the frame
  distributions, statistics, collapse detector) and train on it (``task.train_while_filling=true``
  with a cache that never fills, so that the arm trains on the batch every other arm steps): the
  cost of an update whose cache slot is replaced (probability p), which labels one batch and
  trains on another;
* ``forward``: no update, only the eval-mode forward pass of the model (no gradient), the
  cost labeling should add and nothing more;
* ``*_cached``: train on a cached batch with its stored labels: the other updates of the steady
  state.  The batch comes as the loader gives it (collated outside the timing, as the loader's
  workers do; labels attached in the step).  The cache is filled with these very batches before
  the timing and read in batch order, so a cached update trains on the batch every other arm
  steps at the same turn.

Prints ms per update, the ratio of total times to stock CTC and the median per-batch ratio, the
labeling overhead (``*_label`` minus ``labeled``) against the bare forward pass, and the
steady-state cost per pseudo-labeled update at replacement probability p: every update trains on
a cached batch, and a fraction p of them also labels the incoming batch into the slot first,
cached + p x (label - labeled).  Issue 5's target: labeling costs one extra forward pass, nothing
more.

    python benchmarks/slimipl_step.py --data data/demo --init exp/demo_ctc/checkpoint_best.pt --batches 30
"""
import argparse
from functools import partial
from pathlib import Path

from inprocess import build_trainer, quiet, rows_to_sample, spread, stderr, summary, time_steps

PL_ONLY = ["task.warmup_updates=0", "task.sup_updates=0", "task.unsup_updates=1", "task.unlabeled_subsets=''",
           "task.unsup_on_labeled=true", "task.oracle_labels=null"]
SLIMIPL = "examples/slimipl", "slimipl"
ARMS = {
    "stock_ctc": ("examples/ctc", "scratch_fbank", []),
    "labeled": (*SLIMIPL, ["+variant=supervised_only", "task.warmup_updates=0"]),
    "hard_label": (*SLIMIPL, [*PL_ONLY, "task.cache_size=1000000", "task.train_while_filling=true"]),
    "hard_cached": (*SLIMIPL, [*PL_ONLY, "task.cache_replace_prob=0.0"]),
    "soft_label": (*SLIMIPL, [*PL_ONLY, "task.cache_size=1000000", "task.train_while_filling=true",
                               "+variant=soft"]),
    "soft_cached": (*SLIMIPL, [*PL_ONLY, "task.cache_replace_prob=0.0", "+variant=soft"]),
}


def load_weights(trainer, path: str) -> None:
    from sslasr_plugin.checkpoint import load_checkpoint

    trainer.model.load_state_dict(load_checkpoint(path)["model"], strict=True)


class ForwardOnly:
    """Stands in for a Trainer in ``time_steps``: the eval-mode forward pass of ``trainer``'s model,
    no gradient, on the sample as the trainer prepares it (its device), finished before it returns."""

    def __init__(self, trainer):
        self.trainer = trainer

    def train_step(self, samples):
        import torch
        from sslasr_plugin.decoding.online_labels import emissions

        model = self.trainer.model
        sample, _ = self.trainer._prepare_sample(samples[0])
        model.eval()
        try:
            with torch.no_grad():
                lprobs, _ = emissions(model, sample["net_input"])
        finally:
            model.train()
        if lprobs.is_cuda:
            torch.cuda.synchronize()


def to_label(dataset, rows):
    """The sampler's batch of a read that labels ``rows`` (``PseudoLabelingDataset``): no batch to
    train on, the rows under ``"fresh"``."""
    from sslasr_plugin.batch_modes import UNSUP

    index = dataset.stream_indices(UNSUP, rows) + dataset.fresh_offset()
    return dataset.collater([dataset[int(i)] for i in index])


def fill_in_order(trainer, samples) -> None:
    """Label ``samples`` (batches to label) into the arm's cache (slot i: batch i), then make the
    cache serve slot i at the i-th timed update without relabeling."""
    task = trainer.task
    assert task.cache.size == len(samples), (task.cache.size, len(samples))
    model = trainer.model
    for sample in samples:
        task._pseudo_labeled(trainer._prepare_sample(sample)[0], model, update_num=0)
    assert task.cache.full
    turn = iter(range(len(samples)))
    task.cache.plan = lambda: (next(turn), False)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/demo")
    parser.add_argument("--init", default="exp/demo_ctc/checkpoint_best.pt",
                        help="weights every arm starts from (a CTC model of the slimipl config's shape)")
    parser.add_argument("--batches", type=int, default=30, help="batches per arm, spread over the split's lengths")
    parser.add_argument("--replace-prob", type=float, default=0.1, help="p for the steady-state line")
    args = parser.parse_args()
    data = str(Path(args.data).resolve())
    quiet()
    from sslasr_plugin.batch_modes import SUP, UNSUP

    trainers, collate = {}, {}
    n = None
    for arm, (config_dir, name, overrides) in ARMS.items():
        if arm.endswith("_cached"):
            overrides = [*overrides, f"task.cache_size={n}"]
        trainers[arm], dataset = build_trainer((config_dir, name, overrides), data)
        load_weights(trainers[arm], args.init)
        mode = None if arm == "stock_ctc" else SUP if arm == "labeled" else UNSUP
        collate[arm] = (partial(to_label, dataset) if arm.endswith("_label") else rows_to_sample(dataset, mode))
        if arm == "stock_ctc":  # the stock arm's own batching of labeled, for every arm
            batches = spread(trainers[arm].get_train_iterator(epoch=1, load_dataset=False).frozen_batches,
                             args.batches)
            n = len(batches)
            stock_sizes = list(dataset.sizes)
        else:
            stream = dataset.streams[mode]
            assert list(stream.sizes) == stock_sizes, f"{arm} indexes other utterances than stock_ctc"
        if arm.endswith("_cached"):
            fill_in_order(trainers[arm], [to_label(dataset, b) for b in batches])
    # the labeled arm's model (weights do not change the cost), its batches
    trainers = {**trainers, "forward": ForwardOnly(trainers["labeled"])}
    collate["forward"] = collate["labeled"]
    stderr(f"{n} batches of labeled per arm; weights from {args.init}")
    seconds = time_steps(trainers, {arm: (lambda i, arm=arm: collate[arm](batches[i])) for arm in trainers}, n,
                         log=stderr)
    rows = {arm: row for arm, *row in summary(seconds, "stock_ctc")}
    print("| arm | ms/update (median) | / stock CTC, total time | median of per-batch ratios |")
    print("|---|---|---|---|")
    for arm, (ms, total, per_batch) in rows.items():
        print(f"| {arm} | {ms:.0f} | {total:.3f} | {per_batch:.3f} |")
    fwd = rows["forward"][1]  # total times, as fractions of stock CTC's
    for kind in ("hard", "soft"):
        extra = rows[f"{kind}_label"][1] - rows["labeled"][1]
        print(f"{kind} labels: labeling adds {extra:.3f} x a stock CTC update (total times); the forward pass alone "
              f"{fwd:.3f} ({extra / fwd:.2f}x a forward pass)")
    p = args.replace_prob
    for kind in ("hard", "soft"):
        steady = rows[f"{kind}_cached"][1] + p * (rows[f"{kind}_label"][1] - rows["labeled"][1])
        print(f"{kind} labels, steady state at p = {p}: {steady:.3f} x stock CTC per pseudo-labeled update")


if __name__ == "__main__":
    main()
