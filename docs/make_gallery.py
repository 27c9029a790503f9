"""Regenerate the README's gallery: real runs with the packaged classifier, read by another.

    python docs/make_gallery.py                 # all panels, ~6 min on 2 CPU cores
    python docs/make_gallery.py --panels fourier,compound --seed 1

Each panel is one ``visualize.py`` command (printed in docs/gallery.md next to its picture)
run through the Python API for efficientnet_lite0, then read by efficientnet_lite1, which took
no part in making it: the label under each image is the target, lite1's rank of the intended
class (#1 = its first guess) and lite1's probability for it.  The classes are odd-index ImageNet
classes, whose photos the shipped decoder never saw.  Writes docs/img/gallery/<panel>.png and
docs/gallery.md; no ImageNet photo is written.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from genviz.app import generate  # noqa: E402
from genviz.classifiers import build_classifier  # noqa: E402
from genviz.evaluation import score  # noqa: E402
from genviz.images import grid  # noqa: E402
from genviz.runs import result_label  # noqa: E402

CLASSES = ["goldfish", "lemon", "ladybug", "lion", "soccer ball", "jellyfish"]
_TARGETS = "[" + ",".join("class:" + c.replace(" ", "_") for c in CLASSES) + "]"

# name -> (title, visualize.py overrides after classifier=efficientnet_lite0)
PANELS: dict[str, tuple[str, list[str]]] = {
    "dae_fast": ("Pretrained generator (the shipped decoder), `generator=dae_fast`", ["generator=dae_fast"]),
    "maco": (
        "Baseline: magnitude-constrained optimization (MACO, Fel et al. 2023), `method=maco`",
        ["method=maco"],
    ),
    "fourier": (
        "Baseline: Fourier parameterization + transforms (Lucid), `method=fourier`",
        ["method=fourier"],
    ),
    "untrained_fast": ("Untrained generator, `generator=untrained_fast`", ["generator=untrained_fast"]),
    "dae_fast_sampled": (
        "The shipped decoder from a draw of its code statistics (dae_fast before 2026-12), "
        "`generator=dae_fast_sampled`",
        ["generator=dae_fast_sampled"],
    ),
    "compound": (
        "Compound two-class images (paper Fig. 9), `generator=dae_fast`",
        [
            "generator=dae_fast",
            "target=[class:lemon+class:ladybug,class:goldfish+class:jellyfish,class:lion+class:soccer_ball]",
        ],
    ),
    "filters": (
        "Single filters of lite0's `blocks5` (paper Fig. 8), `generator=dae_fast`",
        [
            "generator=dae_fast",
            "target=[channel:blocks5:0,channel:blocks5:1,channel:blocks5:2,channel:blocks5:3,"
            "channel:blocks5:4,channel:blocks5:5]",
        ],
    ),
}


def command(overrides: list[str], seed: int) -> str:
    target = next((o for o in overrides if o.startswith("target=")), f"target={_TARGETS}")
    rest = [o for o in overrides if not o.startswith("target=")]
    return " ".join(
        ["python visualize.py classifier=efficientnet_lite0", *rest, f"'{target}'", f"seed={seed}"]
    )


def run_panel(name: str, clf, evaluator, seed: int, out_dir: Path) -> dict:
    title, overrides = PANELS[name]
    if not any(o.startswith("target=") for o in overrides):
        overrides = [*overrides, f"target={_TARGETS}"]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "visualize",
            overrides=["classifier=efficientnet_lite0", f"seed={seed}", "progress=false", *overrides],
        )
    t0 = time.perf_counter()
    results = generate(cfg, classifier=clf)
    seconds = time.perf_counter() - t0
    targets = [[int(c) for c in r.get("classes") or []] for r in results]
    import torch

    rows = score(evaluator, torch.stack([r["tensor"] for r in results]), targets)
    labels = []
    for r, row in zip(results, rows, strict=True):
        short = result_label(r).replace("channel:", "")[:18]
        if row["class_rank"] is not None:
            labels.append(f"{short} #{row['class_rank']} {row['prob']:.2f}")
        else:
            labels.append(f"{short}: {row['top1_class'][:10]}")
    path = out_dir / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    grid([r["tensor"] for r in results], labels, ncol=len(results), cell=160).save(path)
    top1 = [row["top1"] for row in rows if row["top1"] is not None]
    return {
        "name": name,
        "title": title,
        "command": command(PANELS[name][1], seed),
        "path": path,
        "top1": (sum(top1), len(top1)),
        "seconds": seconds / len(results),
    }


def write_markdown(panels: list[dict], md: Path) -> None:
    lines = [
        "# Gallery",
        "",
        "Made by `python docs/make_gallery.py` (real runs, efficientnet_lite0 on a 2-core CPU). Under each",
        "image: the target, **efficientnet_lite1's** rank of the intended class and its probability",
        "(lite1 took no part in making the image; a filter's label is lite1's first guess). The classes",
        "are odd-index ImageNet classes: the shipped decoder never saw a photo of them.",
        f"Seconds per image: {torch.get_num_threads()} thread(s), {time.strftime('%Y-%m-%d', time.gmtime())}, "
        "wall time including any other load (idle 2-thread timings: benchmarks/RESULTS.md).",
        "",
    ]
    for p in panels:
        rel = p["path"].relative_to(md.parent)
        read = f"lite1 top-1 {p['top1'][0]}/{p['top1'][1]}, " if p["top1"][1] else ""
        lines += [
            f"## {p['title']}",
            "",
            f"![{p['name']}]({rel.as_posix()})",
            "",
            "```bash",
            p["command"],
            "```",
            f"{read}{p['seconds']:.0f} s per image.",
            "",
        ]
    md.write_text("\n".join(lines))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--panels", default=",".join(PANELS), help=f"comma-separated, from {', '.join(PANELS)}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "docs/img/gallery"))
    ap.add_argument("--markdown", default=str(ROOT / "docs/gallery.md"))
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.panels.split(",") if n.strip()]
    unknown = [n for n in names if n not in PANELS]
    if unknown:
        ap.error(f"unknown panel(s) {unknown}; choose from {', '.join(PANELS)}")
    clf = build_classifier("efficientnet_lite0")
    evaluator = build_classifier("efficientnet_lite1")
    panels = []
    for name in names:
        p = run_panel(name, clf, evaluator, args.seed, Path(args.out))
        print(
            f"{name}: {p['path']}  top-1 {p['top1'][0]}/{p['top1'][1]}  {p['seconds']:.1f} s/image",
            flush=True,
        )
        panels.append(p)
    if set(names) == set(PANELS):
        write_markdown(panels, Path(args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
