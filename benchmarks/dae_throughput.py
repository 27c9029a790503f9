"""Images/s of the DAE training step: Lightning vs a plain PyTorch loop, same model/batch/data.

Also splits the wall time of each into data loading (waiting for the next batch) and
compute (forward, backward, optimizer step and, for Lightning, its bookkeeping).

    OMP_NUM_THREADS=1 python benchmarks/dae_throughput.py                  # cpu_small, val1k
    python benchmarks/dae_throughput.py --dae paper --steps 5 --batch-size 8
    python benchmarks/dae_throughput.py --dae trunk_lite0 --data val1k_even --batch-size 16 --cache true

With a frozen trunk (dae=trunk_lite0) both loops do the same work: the trunk's forward without
gradients, the head and decoder trained, the perceptual loss through the frozen network.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

REPO = Path(__file__).resolve().parents[1]


def build(args):
    over = [f"dae={args.dae}", f"data={args.data}", f"data.batch_size={args.batch_size}"]
    over += [f"data.num_workers={args.num_workers}", f"data.cache={args.cache}", "name=bench"]
    if args.root:
        over.append(f"data.root={args.root}")
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train_dae", overrides=over)
    dm = instantiate(cfg.data)
    dm.setup("fit")
    pl.seed_everything(0)
    model = instantiate(cfg.dae)
    return cfg, dm, model


class Timer(pl.Callback):
    def __init__(self, warmup: int):
        self.warmup, self.data, self.compute, self.t, self.n = warmup, 0.0, 0.0, None, 0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        now = time.perf_counter()
        if self.t is not None and trainer.global_step >= self.warmup:
            self.data += now - self.t
        self.t = now

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        now = time.perf_counter()
        if trainer.global_step > self.warmup:
            self.compute += now - self.t
            self.n += len(batch)
        self.t = now


def run_lightning(args) -> dict:
    _, dm, model = build(args)
    model.hparams.warmup_steps, model.hparams.scheduler = 0, "none"
    timer = Timer(args.warmup)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=args.warmup + args.steps,
        max_epochs=-1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
        num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule=dm)
    return {"images": timer.n, "data_s": timer.data, "compute_s": timer.compute}


def run_plain(args) -> dict:
    _, dm, model = build(args)
    opt = torch.optim.Adam(model.generator_parameters(), lr=model.hparams.lr)
    model.train()
    data = compute = 0.0
    n, step = 0, 0
    while step < args.warmup + args.steps:
        it = iter(dm.train_dataloader())
        while step < args.warmup + args.steps:
            t0 = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                break
            t1 = time.perf_counter()
            _, _, losses, _ = model._step(batch, train=True)
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.generator_parameters(), 1.0)  # as trainer.gradient_clip_val
            opt.step()
            t2 = time.perf_counter()
            if step >= args.warmup:
                data, compute, n = data + t1 - t0, compute + t2 - t1, n + len(batch)
            step += 1
    return {"images": n, "data_s": data, "compute_s": compute}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dae", default="cpu_small")
    p.add_argument("--data", default="val1k")
    p.add_argument("--root", default=None)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--cache", default="false", help="cache decoded images in memory (true/false)")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 1)))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = {}
    for name, fn in (("plain PyTorch", run_plain), ("Lightning", run_lightning)):
        r = fn(args)
        total = r["data_s"] + r["compute_s"]
        rows[name] = r["images"] / total
        print(
            f"{name:14s} {r['images'] / total:7.1f} img/s  data {r['data_s']:.2f}s "
            f"({100 * r['data_s'] / total:.0f}%)  compute {r['compute_s']:.2f}s  [{r['images']} images]"
        )
    ratio = rows["Lightning"] / rows["plain PyTorch"]
    print(
        f"Lightning / plain = {ratio:.3f}  (dae={args.dae}, batch {args.batch_size}, {args.steps} steps, "
        f"workers {args.num_workers}, cache {args.cache}, threads {args.threads})"
    )


if __name__ == "__main__":
    main()
