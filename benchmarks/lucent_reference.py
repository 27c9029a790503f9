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

from quality import CLASSES  # noqa: E402

from genviz.classifiers import build_classifier  # noqa: E402
from genviz.evaluation import load_reference, reference_embeddings, score, summarize  # noqa: E402
from genviz.images import grid  # noqa: E402


class Normalized(torch.nn.Module):
    """[0, 1] RGB -> the classifier's logits; Lucent hooks `net_classifier` (timm's head)."""

    def __init__(self, clf):
        super().__init__()
        self.net, self.clf = clf.model, clf

    def forward(self, x):
        return self.net(self.clf.normalize(self.clf.fit_input(x)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--classes", type=int, default=len(CLASSES))
    ap.add_argument("--class-list", default=None)
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--name", default="lucent_reference")
    ap.add_argument("--log", default=str(ROOT / "benchmarks/results/variants.log"))
    ap.add_argument("--images", default=str(ROOT / "outputs/benchmarks/variants"))
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
    clf = build_classifier("efficientnet_lite0")
    evaluator = build_classifier("efficientnet_lite1")
    refs = reference_embeddings(evaluator, load_reference(None, evaluator.classes))
    names = args.class_list.split(",") if args.class_list else CLASSES[: args.classes]
    idx = [clf.classes.resolve(c) for c in names]
    model = Normalized(clf).eval()

    t0 = time.perf_counter()
    images = []
    for start in range(0, len(idx), args.batch_size):
        chunk = idx[start : start + args.batch_size]
        n = len(chunk)
        obj = sum(objectives.channel("net_classifier", c, batch=i) for i, c in enumerate(chunk))
        out = render.render_vis(
            model,
            obj,
            param_f=functools.partial(param.image, 224, batch=n),
            thresholds=(args.steps,),
            preprocess=False,
            progress=False,
            show_image=False,
        )
        images.append(torch.from_numpy(out[-1]).permute(0, 3, 1, 2).float())
    wall = time.perf_counter() - t0
    images = torch.cat(images)
    with torch.no_grad():
        own = torch.softmax(model(images), -1)[torch.arange(len(idx)), torch.tensor(idx)].mean().item()
    s = summarize(score(evaluator, images, [[i] for i in idx], refs))
    out = Path(args.images) / f"{args.name}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    grid(list(images), [c[:12] for c in names]).save(out)
    line = (
        f"{args.name:28s} n {len(idx)} top1 {s['top1']:.2f} top5 {s['top5']:.2f} prob {s['prob']:.3f} "
        f"plaus_med {s['plausibility_median']:.0f} plaus_mean {s['plausibility_mean']:.1f} own {own:.3f} "
        f"dead 0 s/img {wall / len(idx):.1f} | Lucent render_vis, {args.steps} steps"
    )
    print(line, flush=True)
    with open(args.log, "a") as fh:
        fh.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
