"""Score one configuration variant on the quality benchmark's classes: one line per run.

    python benchmarks/variant.py NAME [--classes 24] -- OVERRIDE [OVERRIDE ...]
    python benchmarks/variant.py fourier_lr0.02 -- method=fourier method.lr=0.02
    python benchmarks/variant.py fast_noise0 --classes 12 -- generator=untrained_small \
        generator.param.noise.kind=none generator.optimizer.lr=0.01

The quick counterpart of benchmarks/quality.py for ablations: the first N of its classes,
generated for efficientnet_lite0 (batches of 8, seed 0), scored by efficientnet_lite1 with the
same metrics. Prints the line, appends it to --log (default benchmarks/results/variants.log)
and saves a labelled grid of the images to outputs/benchmarks/variants/NAME.png.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from quality import CLASSES  # noqa: E402

from genviz.app import generate  # noqa: E402
from genviz.classifiers import build_classifier  # noqa: E402
from genviz.evaluation import load_reference, reference_embeddings, score, summarize  # noqa: E402
from genviz.images import grid  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name")
    ap.add_argument("--classes", type=int, default=len(CLASSES))
    ap.add_argument("--class-list", default=None, help="comma-separated classes instead of the benchmark's")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--log", default=str(ROOT / "benchmarks/results/variants.log"))
    ap.add_argument("--images", default=str(ROOT / "outputs/benchmarks/variants"))
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    args = ap.parse_args(argv[:cut])
    args.overrides = argv[cut + 1 :]
    if not 1 <= args.classes <= len(CLASSES):
        ap.error(f"--classes must be in 1..{len(CLASSES)}")

    clf = build_classifier("efficientnet_lite0")
    evaluator = build_classifier("efficientnet_lite1")
    refs = reference_embeddings(evaluator, load_reference(None, evaluator.classes))
    names = args.class_list.split(",") if args.class_list else CLASSES[: args.classes]
    idx = [clf.classes.resolve(c) for c in names]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "visualize",
            overrides=[
                "classifier=efficientnet_lite0",
                f"target=[{','.join(f'class:{i}' for i in idx)}]",
                "progress=false",
                "out_dir=unused",
                f"batch_size={args.batch_size}",
                *args.overrides,
            ],
        )
    t0 = time.perf_counter()
    results = generate(cfg, classifier=clf)
    wall = time.perf_counter() - t0
    images = torch.stack([r["tensor"] for r in results])
    s = summarize(score(evaluator, images, [[i] for i in idx], refs))
    own = sum(r["prob"] for r in results) / len(results)
    dead = sum(r["status"] != "ok" for r in results)
    out = Path(args.images) / f"{args.name}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    grid(list(images), [c[:12] for c in names]).save(out)
    line = (
        f"{args.name:28s} n {len(idx)} top1 {s['top1']:.2f} top5 {s['top5']:.2f} prob {s['prob']:.3f} "
        f"plaus_med {s['plausibility_median']:.0f} plaus_mean {s['plausibility_mean']:.1f} own {own:.3f} "
        f"dead {dead} s/img {wall / len(results):.1f} | {' '.join(args.overrides)}"
    )
    print(line, flush=True)
    Path(args.log).parent.mkdir(parents=True, exist_ok=True)
    with open(args.log, "a") as fh:
        fh.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
