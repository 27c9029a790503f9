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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from quality import CLASS_SETS, CLASSES, compose_run, scored_row, select_classes  # noqa: E402

from genviz.app import generate  # noqa: E402
from genviz.classifiers import build_classifier  # noqa: E402
from genviz.images import grid  # noqa: E402
from genviz.realism import realism_references, reference_figures  # noqa: E402
from genviz.references import load_reference, reference_embeddings  # noqa: E402


def add_common_args(ap: argparse.ArgumentParser) -> None:
    """Options shared with benchmarks/lucent_reference.py."""
    ap.add_argument("--classes", type=int, default=len(CLASSES))
    ap.add_argument("--class-list", default=None, help="comma-separated classes instead of the benchmark's")
    ap.add_argument(
        "--class-set", choices=sorted(CLASS_SETS), default="default", help="odd: the held-out list"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--log", default=str(ROOT / "benchmarks/results/variants.log"))
    ap.add_argument("--images", default=str(ROOT / "outputs/benchmarks/variants"))


def setup(ap: argparse.ArgumentParser, args):
    """(generating classifier, evaluator, reference embeddings, class names, class indices)."""
    try:
        names = select_classes(args.class_set, args.classes)
    except ValueError as e:
        ap.error(str(e))
    if args.class_list:
        names = args.class_list.split(",")
    clf = build_classifier("efficientnet_lite0")
    evaluator = build_classifier("efficientnet_lite1")
    refs = reference_embeddings(evaluator, load_reference(None, evaluator.classes))
    return clf, evaluator, refs, names, [clf.classes.resolve(c) for c in names]


def record(args, name: str, names, results, row: dict, note: str) -> str:
    """Save the labelled grid, print the one-line summary and append it to the log."""
    out = Path(args.images) / f"{name}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    grid([r["tensor"] for r in results], [c[:12] for c in names]).save(out)
    line = (
        f"{name:28s} n {len(results)} top1 {row['top1']:.2f} top5 {row['top5']:.2f} prob {row['prob']:.3f} "
        f"plaus_med {row['plausibility_median']:.0f} plaus_mean {row['plausibility_mean']:.1f} "
        f"own {row['own_prob']:.3f} dead {row['dead']} s/img {row['s_per_image']:.1f}"
    )
    if "kid_x1000" in row:  # the realism figures (genviz/realism.py)
        line += (
            f" kid {row['kid_x1000']:.1f}±{row['kid_se_x1000']:.1f} colour {row['colourfulness']:.1f} "
            f"contrast {row['contrast']:.3f}"
        )
    line += f" | {note}"
    print(line, flush=True)
    Path(args.log).parent.mkdir(parents=True, exist_ok=True)
    with open(args.log, "a") as fh:
        fh.write(line + "\n")
    return line


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name")
    add_common_args(ap)
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    args = ap.parse_args(argv[:cut])
    overrides = argv[cut + 1 :]
    clf, evaluator, refs, names, idx = setup(ap, args)
    cfg = compose_run("efficientnet_lite0", idx, overrides, seed=args.seed, batch_size=args.batch_size)
    t0 = time.perf_counter()
    results = generate(cfg, classifier=clf)
    wall = time.perf_counter() - t0
    real = reference_figures(evaluator, realism_references(idx))
    row = scored_row(evaluator, refs, idx, results, wall, real)
    record(args, args.name, names, results, row, " ".join(overrides))
    return 0


if __name__ == "__main__":
    sys.exit(main())
