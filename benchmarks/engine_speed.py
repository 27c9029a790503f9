"""Engine speed: one step of genviz.engine.render vs a bare PyTorch loop, and batching.

    python benchmarks/engine_speed.py [--steps 5] [--classifiers efficientnet_lite0 vgg16]
                                      [--batches 1 2 4 8 16] [--channels-last] [--compile]

VGG16 runs with random weights (no download needed; the cost is the same).
The "pretrained" mode uses a randomly initialized paper-size decoder as a
stand-in for a DAE decoder (same cost). Prints markdown tables.
"""

from __future__ import annotations

import argparse
import logging
import time

import torch

from genviz.classifiers import build_classifier, vgg16
from genviz.engine import render
from genviz.objectives import BatchObjective, class_
from genviz.params import generator_prior

MODES = {
    "untrained": dict(
        mode="untrained",
        norm_stats="instance",
        noise={"kind": "additive", "std": 2.0},
        alpha={"init": "glorot", "relu": False},
        penalty={"kind": "output_gamma_l1", "weight": 0.01},
    ),
    "pretrained": dict(
        mode="pretrained",
        norm_stats="module",
        noise={"kind": "multiplicative", "std": 0.05},
        alpha={"init": "ones", "relu": True},
        penalty={"kind": "alpha_l2", "weight": 0.1},
    ),
}


def optimizer_for(mode):
    if mode == "untrained":
        return lambda p: torch.optim.Adamax(p, lr=0.002)
    return lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.1, nesterov=True)


def make_classifier(name):
    return vgg16(pretrained=False) if name == "vgg16" else build_classifier(name)


def engine_time(clf, mode, batch, steps, channels_last=False, compile=False):
    param = generator_prior(batch, channels_last=channels_last, compile=compile, **MODES[mode])
    bo = BatchObjective([class_(i) for i in range(batch)], lam=0.01)
    render(param, bo, clf, optimizer_for(mode), steps=2 if compile else 1, progress=False)  # warm-up
    param = generator_prior(batch, channels_last=channels_last, compile=compile, **MODES[mode])
    t = time.perf_counter()
    render(param, bo, clf, optimizer_for(mode), steps=steps, progress=False, check_every=10)
    return (time.perf_counter() - t) / steps


def bare_time(clf, mode, batch, steps):
    """The same work written as a plain loop: no hooks, no objective object, no checks."""
    param = generator_prior(batch, **MODES[mode])
    opt = optimizer_for(mode)(param.params)
    target = torch.arange(batch)

    def step():
        img = param.image_fn().clamp(0, 1)
        logits = clf(clf.fit_input(img))
        act = torch.relu(logits)
        score = act.gather(1, target[:, None]).squeeze(1)
        others = act.sum(1) - score
        loss = (-score + 0.01 * others + param.penalty()).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t) / steps


def main():
    logging.getLogger("genviz").setLevel(logging.ERROR)
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--classifiers", nargs="+", default=["efficientnet_lite0", "vgg16"])
    ap.add_argument("--modes", nargs="+", default=["untrained", "pretrained"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 2, 4, 8, 16])
    ap.add_argument("--batch-classifier", default="efficientnet_lite0")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--compile", action="store_true", help="torch.compile the generator")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, steps {args.steps}\n")
    print("| classifier | mode | engine s/step | bare loop s/step | ratio |")
    print("|---|---|---|---|---|")
    for name in args.classifiers:
        clf = make_classifier(name)
        for mode in args.modes:
            e = engine_time(clf, mode, 1, args.steps, args.channels_last, args.compile)
            b = bare_time(clf, mode, 1, args.steps)
            print(f"| {name} | {mode} | {e:.3f} | {b:.3f} | {e / b:.3f} |", flush=True)
    clf = make_classifier(args.batch_classifier)
    print(f"\nBatching ({args.batch_classifier}): seconds per target-step\n")
    print("| mode | " + " | ".join(f"B={b}" for b in args.batches) + " |")
    print("|---|" + "---|" * len(args.batches))
    for mode in args.modes:
        cells = [
            engine_time(clf, mode, b, args.steps, args.channels_last, args.compile) / b for b in args.batches
        ]
        print(f"| {mode} | " + " | ".join(f"{c:.3f}" for c in cells) + " |", flush=True)


if __name__ == "__main__":
    main()
