"""Optimizer step alone: sslasr_dual_adam against fairseq's adam on the same parameters.

Joint CPC + CTC keeps two moment sets (``sslasr_dual_adam``); each update steps one of them.
This times that step, and fairseq's ``adam`` (what the stock wav2vec 2.0 / CTC recipes use)
over the same parameters and gradients, interleaved so that both see the same machine load.
The parameters are those of a real model: fairseq's wav2vec 2.0 (``--size demo``: the
plugin's 6-layer, 256-dim demo encoder; ``--size base``: BASE, 95 M parameters).  Prints ms per
step (median) and the ratio dual / stock.

    python benchmarks/optimizer_step.py --size demo --steps 50
    python benchmarks/optimizer_step.py --size base --device cuda --steps 50
"""
import argparse
import statistics
import time

import torch
from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Config, Wav2Vec2Model
from fairseq.optim.adam import FairseqAdam, FairseqAdamConfig
from omegaconf import OmegaConf

from sslasr_plugin.optim.dual_adam import DualAdamConfig, FairseqDualAdam

SIZES = {
    "demo": dict(encoder_layers=6, encoder_embed_dim=256, encoder_ffn_embed_dim=1024, encoder_attention_heads=4,
                 conv_feature_layers="[(256, 10, 5)] + [(256, 3, 2)] * 4 + [(256, 2, 2)] * 2", final_dim=128),
    "base": dict(),  # fairseq's defaults are BASE
}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="demo")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    device = torch.device(args.device)

    torch.manual_seed(0)
    model = Wav2Vec2Model(Wav2Vec2Config(**SIZES[args.size])).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    grads = [torch.randn_like(p) for p in params]
    print(f"{args.size}: {sum(p.numel() for p in params) / 1e6:.1f} M parameters in {len(params)} tensors, {device}")
    adam_cfg = OmegaConf.structured(FairseqAdamConfig(lr=[1e-4], adam_betas="(0.9,0.98)", adam_eps=1e-6,
                                                      weight_decay=0.01, tpu=False, use_old_adam=False))
    stock = FairseqAdam(adam_cfg, params)
    dual = FairseqDualAdam(OmegaConf.structured(DualAdamConfig(lr=[1e-4], unsup_clip_norm=25.0, sup_clip_norm=1.0)),
                           params)

    def step(opt, **kw):
        for p, g in zip(params, grads):
            p.grad = g
        _sync(device)
        t0 = time.perf_counter()
        opt.step(**kw)
        _sync(device)
        return time.perf_counter() - t0

    times = {"fairseq adam": [], "dual adam, unsup": [], "dual adam, sup": []}
    for i in range(args.steps + 3):  # the first steps allocate moments: not timed
        for name, opt, kw in (("fairseq adam", stock, {}), ("dual adam, unsup", dual, {"groups": {"unsup"}}),
                              ("dual adam, sup", dual, {"groups": {"sup"}})):
            t = step(opt, **kw)
            if i >= 3:
                times[name].append(t)
    ref = statistics.median(times["fairseq adam"])
    for name, ts in times.items():
        ms = 1000 * statistics.median(ts)
        print(f"{name:18s} {ms:8.2f} ms/step   / fairseq adam: {statistics.median(ts) / ref:.2f}")


if __name__ == "__main__":
    main()
