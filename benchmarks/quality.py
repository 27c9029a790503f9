"""How good are the images? Generate a fixed set of classes with each method and score
them with an independent classifier (genviz/evaluation.py).

    python benchmarks/quality.py                              # all classes, each method's own steps
    python benchmarks/quality.py --classes 6 --steps 50       # a reduced run (labelled as such)
    python benchmarks/quality.py --methods untrained,pixel
    python benchmarks/quality.py --class-set odd --methods dae_fast,fourier   # held-out classes

Methods (skipped with a note when their config or checkpoint is missing):
  dae                generator prior, pretrained decoder, the paper's settings
                     (--checkpoint PATH; default: the decoder genviz ships)
  dae_fast           the configuration tuned for the shipped decoder: Adam lr 0.1 on a code kept
                     within 3 sd of its training statistics, transforms, 200 steps
  untrained          generator prior, untrained generator (the paper's, Table 1)
  untrained_small    the same at 1/8 width, 7x7 code (conf/generator/untrained_small.yaml)
  untrained_fast     improved configuration: untrained_small without code noise, lr 0.01
  pixel              method=pixel
  pixel_regularized  method=pixel_regularized
  fourier            method=fourier
  maco               method=maco (Fel et al. 2023: fixed photo magnitude spectrum, optimized phase)

Target classifier efficientnet_lite0; evaluators efficientnet_lite1 and efficientnet_lite2 (not the
one optimized; --evaluator takes a comma-separated list), each with the realism figures of
genviz/realism.py: KID to real photos of the same classes, colourfulness and RMS contrast.
Prints a table and writes benchmarks/results/quality.md with the exact command; the images
of each method go to outputs/benchmarks/quality/<method>/ (evaluate.py works on them).
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genviz.app import generate, save  # noqa: E402
from genviz.classifiers import build_classifier  # noqa: E402
from genviz.evaluation import score, summarize  # noqa: E402
from genviz.generator import SHIPPED_NAMES  # noqa: E402
from genviz.methods import with_steps  # noqa: E402
from genviz.realism import REALISM_SIZE, realism, realism_references, reference_figures  # noqa: E402
from genviz.references import load_reference, reference_embeddings  # noqa: E402

# 24 ImageNet classes spread over the hierarchy, ordered so that any prefix stays varied:
# animals (fish, bird, amphibian, reptile, dog, cat, big cat, insect, echinoderm), vehicles,
# buildings, instruments, clothing, furniture, household objects, food, landscape, tools.
CLASSES = [
    "tench", "mosque", "golden retriever", "strawberry", "school bus", "monarch",
    "violin", "volcano", "goldfinch", "teapot", "tiger", "airliner",
    "miniskirt", "bullfrog", "pizza", "crib", "loggerhead", "container ship",
    "tabby", "harmonica", "starfish", "church", "banana", "hammer",
]  # fmt: skip

# The held-out list: 24 odd-index classes, spread the same way. genviz's shipped decoder was
# trained only on photos of even-index classes, so its figures count on this list alone.
ODD_CLASSES = [
    "goldfish", "castle", "German shepherd", "lemon", "fire engine", "ladybug",
    "grand piano", "valley", "robin", "analog clock", "lion", "warplane",
    "bikini", "tree frog", "cheeseburger", "folding chair", "common iguana", "trimaran",
    "Egyptian cat", "jellyfish", "barn", "pineapple", "padlock", "soccer ball",
]  # fmt: skip
CLASS_SETS = {"default": CLASSES, "odd": ODD_CLASSES}

DEFAULT_CKPT = "shipped"  # the decoder genviz ships (genviz/weights/dae_trunk_lite0.pt)


def select_classes(class_set: str, n: int, offset: int = 0) -> list[str]:
    """Classes ``offset+1 .. offset+n`` of a class list: a long run cut into chunks
    (``--classes 6 --offset 0``, then ``--offset 6``) covers the list once, in order."""
    names = CLASS_SETS[class_set]
    if not 1 <= n <= len(names):
        raise ValueError(f"--classes must be in 1..{len(names)}")
    if not 0 <= offset < len(names):
        raise ValueError(f"--offset must be in 0..{len(names) - 1}")
    if offset + n > len(names):
        raise ValueError(
            f"--offset {offset} --classes {n} runs past the list's {len(names)} classes; "
            f"use --classes {len(names) - offset} or less"
        )
    return names[offset : offset + n]


def methods(checkpoint: str) -> dict[str, tuple[list[str], str | None]]:
    """name -> (visualize overrides, reason it cannot run or None)."""
    conf = ROOT / "conf"
    out = {}
    shipped = checkpoint in SHIPPED_NAMES
    ck = Path(checkpoint) if shipped or Path(checkpoint).is_absolute() else ROOT / checkpoint
    for g in ("dae", "dae_fast", "dae_fast_sampled"):
        out[g] = (
            ["method=generator_prior", f"generator={g}", f"generator.param.checkpoint={ck}"],
            None if shipped or ck.exists() else f"no DAE checkpoint at {checkpoint}",
        )
    for g in ("untrained", "untrained_small", "untrained_fast"):
        out[g] = (["method=generator_prior", f"generator={g}"], None)
    for m in ("pixel", "pixel_regularized", "fourier", "maco"):
        missing = not (conf / "method" / f"{m}.yaml").exists()
        out[m] = ([f"method={m}"], f"no conf/method/{m}.yaml yet" if missing else None)
    return out


def compose_run(
    classifier: str, idx, overrides, seed: int = 0, batch_size: int = 8, out_dir="unused", progress=False
):
    """The visualize config that makes one image per class index in ``idx`` (overrides last);
    ``progress``: a bar per batch on stderr (updated every ``check_every`` steps)."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(
            config_name="visualize",
            overrides=[
                f"classifier={classifier}",
                f"target=[{','.join(f'class:{i}' for i in idx)}]",
                f"seed={seed}",
                f"batch_size={batch_size}",
                f"progress={str(bool(progress)).lower()}",
                f"out_dir={out_dir}",
                *overrides,
            ],
        )


def scored_row(evaluator, refs, idx, results, wall: float, real=None) -> dict:
    """The benchmark's figures for one method's results (dicts with tensor, prob, status);
    ``real``: :func:`genviz.realism.reference_figures` of the classes' photos (realism columns)."""
    images = torch.stack([r["tensor"] for r in results])
    scored = score(evaluator, images, [[i] for i in idx], refs)
    looks = {}
    if real is not None:
        looks = realism(evaluator, images, real)
    return {
        "evaluator": evaluator.name,
        **summarize(scored),
        **looks,
        "own_prob": sum(r["prob"] for r in results) / len(results),
        "dead": sum(r["status"] != "ok" for r in results),
        "s_per_image": wall / len(results),
        "per_class": [(r["class_rank"], r["plausibility"]) for r in scored],
    }


def fmt(v, d=3):
    return (
        ""
        if v is None or (isinstance(v, float) and math.isnan(v))
        else (f"{v:.{d}f}" if isinstance(v, float) else str(v))
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--classes", type=int, default=len(CLASSES), help=f"first N of the {len(CLASSES)} classes"
    )
    ap.add_argument(
        "--class-set",
        choices=sorted(CLASS_SETS),
        default="default",
        help="default: the 24 benchmark classes; odd: the 24 held-out odd-index classes",
    )
    ap.add_argument(
        "--offset", type=int, default=0, help="skip the first K classes of the list (a long run in chunks)"
    )
    ap.add_argument("--steps", type=int, default=None, help="override every method's steps (reduced run)")
    ap.add_argument(
        "--methods", default="dae,dae_fast,untrained,untrained_fast,pixel,pixel_regularized,fourier"
    )
    ap.add_argument("--classifier", default="efficientnet_lite0")
    ap.add_argument(
        "--evaluator",
        default="efficientnet_lite1,efficientnet_lite2",
        help="comma-separated: each scores the same images",
    )
    ap.add_argument("--checkpoint", default=DEFAULT_CKPT)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reference-dir", default=None, help="default: $GENVIZ_SHARED/data/imagenet-val-1k")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/quality.md"))
    ap.add_argument("--images", default=str(ROOT / "outputs/benchmarks/quality"))
    ap.add_argument("--override", action="append", default=[], help="extra visualize override (repeatable)")
    ap.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a progress bar per batch (a long method, e.g. the paper's untrained mode, runs for minutes)",
    )
    args = ap.parse_args(argv)

    try:
        classes = select_classes(args.class_set, args.classes, args.offset)
    except ValueError as e:
        ap.error(str(e))
    table = methods(args.checkpoint)
    wanted = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in wanted if m not in table]
    if unknown:
        ap.error(f"unknown method(s) {unknown}; choose from {list(table)}")

    clf = build_classifier(args.classifier)
    rows, notes = [], []
    evaluators = [build_classifier(e.strip()) for e in args.evaluator.split(",") if e.strip()]
    ref = load_reference(args.reference_dir, evaluators[0].classes)
    refs = [reference_embeddings(e, ref) for e in evaluators]
    idx = [clf.classes.resolve(c) for c in classes]
    real_ref = realism_references(idx)
    real = [reference_figures(e, real_ref) for e in evaluators]
    photos = (
        f"Real photos for the realism columns: {real_ref.note}; at {REALISM_SIZE} px their colourfulness "
        f"median is {real[0]['colourfulness'].median():.1f} and their RMS contrast median "
        f"{real[0]['contrast'].median():.3f}."
    )
    print(photos, flush=True)

    for name in wanted:
        overrides, missing = table[name]
        if missing:
            notes.append(f"{name}: skipped ({missing})")
            print(f"note: {name} skipped: {missing}", flush=True)
            continue
        cfg = compose_run(
            args.classifier,
            idx,
            [*overrides, *args.override],
            args.seed,
            args.batch_size,
            Path(args.images) / name,
            progress=args.progress,
        )
        cfg = with_steps(cfg, args.steps)
        steps = cfg.generator.steps if cfg.method.name == "generator_prior" else cfg.method.get("steps")
        print(f"{name}: {len(idx)} classes, {steps} steps ...", flush=True)
        t0 = time.perf_counter()
        results = generate(cfg, classifier=clf)
        wall = time.perf_counter() - t0
        save(results, cfg.out_dir, cfg)
        for e, r, fig in zip(evaluators, refs, real):
            rows.append({"method": name, "steps": steps, **scored_row(e, r, idx, results, wall, fig)})
            print(fmt_row(rows[-1]), flush=True)

    command = "python benchmarks/quality.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    write_md(Path(args.out), rows, notes, args, classes, command, photos)
    print("\n" + header() + "\n" + "\n".join(fmt_row(r) for r in rows))
    print(f"\nwrote {args.out}")
    return 0


def header() -> str:
    cols = ["method", "evaluator", "steps", "n", "top-1", "top-5", "mean prob", "plaus. median", "plaus. mean",
            "plaus. =1", "KID x1000", "colourful.", "contrast", "own prob", "dead", "s/image"]  # fmt: skip
    return "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols)


def fmt_row(r) -> str:
    kid = "" if "kid_x1000" not in r else f"{fmt(r['kid_x1000'], 1)} ± {fmt(r['kid_se_x1000'], 1)}"
    vals = [r["method"], r.get("evaluator", ""), r["steps"], r["n"], fmt(r["top1"], 2), fmt(r["top5"], 2),
            fmt(r["prob"]), fmt(r["plausibility_median"], 0), fmt(r["plausibility_mean"], 1),
            fmt(r["plausibility_top1"], 2), kid, fmt(r.get("colourfulness"), 1), fmt(r.get("contrast"), 3),
            fmt(r["own_prob"]), r["dead"], fmt(r["s_per_image"], 1)]  # fmt: skip
    return "| " + " | ".join(str(v) for v in vals) + " |"


def write_md(path: Path, rows, notes, args, classes, command, photos: str = "") -> None:
    reduced = len(classes) < len(CLASSES) or args.steps is not None
    label = (
        f"**Reduced run** ({len(classes)}/{len(CLASSES)} classes"
        + (f", from class {args.offset + 1}" if args.offset else "")
        + (f", {args.steps} steps instead of each method's default" if args.steps is not None else "")
        + "): indicative only, not the benchmark's full setting."
        if reduced
        else "Full run: every class, each method's configured number of steps."
    )
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    md = [
        "# Image quality benchmark",
        "",
        f"Command (from the repository root, OMP_NUM_THREADS={threads}, CPU, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}):",
        "",
        "```bash",
        command,
        "```",
        "",
        label,
        "",
        f"Images generated for `{args.classifier}` (seed {args.seed}, batches of {args.batch_size}), "
        f"scored by the independent evaluator(s) `{args.evaluator}`. top-1 / top-5: rate of the intended "
        "class among the evaluator's first 1 / 5 guesses; mean prob: its mean softmax probability; "
        "plausibility: rank (1-1000, 1 = best) of the class's real image among the 1000 reference "
        "images (imagenet-val-1k) by cosine similarity in the evaluator's penultimate embedding "
        "(median, mean, rate of rank 1); own prob: the generating classifier's probability; dead: images "
        "whose status is not ok (the target not active on the final image, or not finite); s/image: wall time per image (batched) on this machine. "
        f"Realism, at {REALISM_SIZE} px: KID x 1000 (± its spread over 100 subsets) to real photos of the same "
        "classes in the evaluator's pooled features; colourfulness (Hasler & Süsstrunk) and RMS contrast "
        "medians.",
        "",
        photos,
        "",
        f"Classes: {', '.join(classes)}.",
        "",
        header(),
        *[fmt_row(r) for r in rows],
        "",
    ]
    if rows:
        md += [
            "Per class: the evaluator's rank of the intended class (1 = its top-1 guess) / the "
            "plausibility rank of the class's real image (1-1000).",
            "",
            "| class | " + " | ".join(f"{r['method']} ({r.get('evaluator', '')})" for r in rows) + " |",
            "|---|" + "---|" * len(rows),
            *[
                f"| {c} | "
                + " | ".join(f"{r['per_class'][k][0]} / {fmt(r['per_class'][k][1], 0)}" for r in rows)
                + " |"
                for k, c in enumerate(classes)
            ],
            "",
        ]
    if notes:
        md += ["Not run:", "", *[f"- {n}" for n in notes], ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(md))


if __name__ == "__main__":
    sys.exit(main())
