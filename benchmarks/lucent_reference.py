"""External reference for the Fourier baseline: the Lucent package itself on the quality classes.

    pip install torch-lucent "kornia<0.5"    # not genviz dependencies; Lucent 0.1.8 needs kornia 0.4
    python benchmarks/lucent_reference.py [--classes 24] [--steps 256] [--class-list 25,75,...]

Lucent's own `render_vis` (param.image: Fourier + decorrelated colour + sigmoid; its standard
transforms; Adam 0.05; the target logit as the objective, summed over a batch of targets)
optimizes the images for efficientnet_lite0; they are scored by efficientnet_lite1 exactly as
in benchmarks/variant.py, and the line is appended to benchmarks/results/variants.log. It tells
apart what our `method=fourier` does differently from what the class list makes hard.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from quality import scored_row  # noqa: E402
from variant import add_common_args, record, setup  # noqa: E402


class Normalized(torch.nn.Module):
    """[0, 1] RGB -> the classifier's logits; Lucent hooks `net_classifier` (timm's head)."""

    def __init__(self, clf):
        super().__init__()
        self.net, self.clf = clf.model, clf

    def forward(self, x):
        return self.net(self.clf.normalize(self.clf.fit_input(x)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(ap)
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--name", default="lucent_reference")
    args = ap.parse_args(argv)
    try:
        if "IPython" not in sys.modules:  # Lucent imports it only for notebook display
            try:
                import IPython  # noqa: F401
            except ImportError:
                stub = types.ModuleType("IPython")
                stub.get_ipython = lambda: None
                stub.display = types.ModuleType("IPython.display")
                sys.modules.update({"IPython": stub, "IPython.display": stub.display})
        from lucent.optvis import objectives, param, render
    except ImportError as e:
        sys.exit(
            f"error: this reference needs the Lucent package ({e}); pip install torch-lucent 'kornia<0.5'"
        )

    torch.manual_seed(0)
    clf, evaluator, refs, names, idx = setup(ap, args)
    model = Normalized(clf).eval()
    t0 = time.perf_counter()
    images = []
    for start in range(0, len(idx), args.batch_size):
        chunk = idx[start : start + args.batch_size]
        obj = sum(objectives.channel("net_classifier", c, batch=i) for i, c in enumerate(chunk))
        out = render.render_vis(
            model,
            obj,
            param_f=functools.partial(param.image, 224, batch=len(chunk)),
            thresholds=(args.steps,),
            preprocess=False,
            progress=False,
            show_image=False,
        )
        images.append(torch.from_numpy(out[-1]).permute(0, 3, 1, 2).float())
    wall = time.perf_counter() - t0
    images = torch.cat(images)
    with torch.no_grad():
        probs = torch.softmax(model(images), -1)[torch.arange(len(idx)), torch.tensor(idx)]
    results = [{"tensor": x, "prob": p.item(), "status": "ok"} for x, p in zip(images, probs)]
    row = scored_row(evaluator, refs, idx, results, wall)
    record(args, args.name, names, results, row, f"Lucent render_vis, {args.steps} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
