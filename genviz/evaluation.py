"""What are the generated images worth? Score them with independent classifiers.

For every image and every evaluator classifier (not the one that generated it):

- ``top1`` / ``top5``: is the intended class the evaluator's first / among its
  first five guesses (compound targets: ``top1`` = the first guess is one of
  their classes, ``top5`` = *all* their classes are in the top five);
- ``prob``: the evaluator's softmax probability of the target (mean over the
  classes of a compound target), ``class_rank`` its rank among all classes;
- ``plausibility``: the rank (1 = nearest) of the target class's real image among
  all images of a reference folder, by cosine similarity to the generated image
  in the evaluator's penultimate embedding. Rank 1 means the generated image
  looks, to the evaluator, more like a real example of its class than like any
  other real image. The reference embeddings are computed once per evaluator and
  folder, batched, and cached to a file (:mod:`genviz.references`).

``evaluate_run(run_dir, ...)`` reads a visualize run (``results.json`` + PNGs)
and writes ``evaluation.csv`` and ``evaluation.md`` into it.  Its summary also carries the
realism figures of :mod:`genviz.realism` per evaluator: KID to real photos of the run's classes
(± its spread over subsets), and the colourfulness and RMS contrast medians of the run's images
and of those photos, all compared at :data:`~genviz.realism.REALISM_SIZE` px.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import statistics
from pathlib import Path

import torch

from .atomic import write_bytes_atomic, write_text_atomic
from .classifiers import Classifier, build_classifier
from .options import check_writable_dir, int_value
from .realism import REALISM_SIZE, realism, realism_references, reference_figures
from .references import ReferenceEmbeddings, load_images, load_reference, reference_embeddings
from .runs import STATUS_NAN, TargetResult, check_class_range, read_results, result_ok, result_status
from .scoring import nearest as nearest_refs
from .scoring import plausibility_ranks, score_images

log = logging.getLogger(__name__)


def score(
    clf: Classifier,
    images: torch.Tensor,
    targets: list[list[int]],
    refs: ReferenceEmbeddings | None = None,
    batch_size: int = 32,
    top: int = 5,
    nearest: int = 3,
) -> list[dict]:
    """Score images [N, 3, H, W] in [0, 1] against their target classes with the evaluator ``clf``.

    ``targets[i]``: class indices of image i's target (several for a compound target, none
    for a channel target: then only its top guesses and nearest references are reported)."""
    s = score_images(clf, images, refs, batch_size, desc=f"scoring with {clf.name}")
    probs, class_rank = s.classes.probs, s.classes.rank_table
    topk = s.classes.top(top).indices
    if refs is not None:
        plaus = plausibility_ranks(s.sims, refs, targets)
        near = nearest_refs(s.sims, nearest).indices
    else:
        plaus, near = [math.nan] * len(images), None
    rows = []
    names = clf.classes
    for i, cls in enumerate(targets):
        row = {
            "evaluator": clf.name,
            "top1_class": names.name(int(topk[i, 0])),
            "top5_classes": "; ".join(names.name(int(c)) for c in topk[i]),
        }
        if cls:
            t = torch.tensor(cls, dtype=torch.long)
            row.update(
                top1=bool(int(topk[i, 0]) in cls),
                top5=bool(torch.isin(t, topk[i]).all()),
                prob=float(probs[i, t].mean()),
                class_rank=int(class_rank[i, t].max()),
            )
        else:
            row.update(top1=None, top5=None, prob=math.nan, class_rank=None)
        row["plausibility"] = plaus[i]
        if near is not None:
            row["nearest"] = "; ".join(refs.files[int(j)].name for j in near[i])
            row["nearest_classes"] = "; ".join(names.name(int(refs.classes[int(j)])) for j in near[i])
        rows.append(row)
    return rows


def summarize(rows: list[dict]) -> dict:
    """Means over the rows with a class target: top-1 / top-5 rate, mean prob, plausibility."""
    cls_rows = [r for r in rows if r.get("top1") is not None]
    plaus = [r["plausibility"] for r in cls_rows if not math.isnan(r["plausibility"])]
    n = len(cls_rows)
    return {
        "n": n,
        "top1": sum(r["top1"] for r in cls_rows) / n if n else math.nan,
        "top5": sum(r["top5"] for r in cls_rows) / n if n else math.nan,
        "prob": sum(r["prob"] for r in cls_rows) / n if n else math.nan,
        "plausibility_median": float(statistics.median(plaus)) if plaus else math.nan,
        "plausibility_mean": sum(plaus) / len(plaus) if plaus else math.nan,
        "plausibility_top1": sum(p == 1 for p in plaus) / len(plaus) if plaus else math.nan,
    }


# ---------------------------------------------------------------------------------------------
# run directories


def read_run(run_dir) -> tuple[dict, list[TargetResult]]:
    """(config, results) of a visualize run's results.json; a file that is not one (truncated,
    not JSON, a list...) is a :class:`RunFileError` naming it."""
    path = Path(run_dir) / "results.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run_dir must be a visualize output directory")
    return read_results(path)


def _fmt(v, digits: int = 3) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        if v.is_integer() and abs(v) >= 1:
            return str(int(v))
        return f"{v:.{digits}f}"
    return str(v)


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c)).replace("|", "/") for c in columns) + " |")
    return "\n".join(lines)


ROW_COLUMNS = [
    "target",
    "image",
    "evaluator",
    "activation",
    "top1",
    "top5",
    "prob",
    "class_rank",
    "plausibility",
    "top1_class",
    "nearest_classes",
]
SUMMARY_COLUMNS = [
    "evaluator",
    "n",
    "top1",
    "top5",
    "prob",
    "plausibility_median",
    "plausibility_mean",
    "plausibility_top1",
    "kid_x1000",
    "kid_se_x1000",
    "colourfulness",
    "ref_colourfulness",
    "contrast",
    "ref_contrast",
    "not_ok",
]


def evaluate_run(
    run_dir,
    evaluators=("efficientnet_lite1", "efficientnet_lite2"),
    reference_dir=None,
    reference_classes=None,
    batch_size: int = 32,
    cache_dir=None,
    use_cache: bool = True,
    nearest: int = 3,
    realism_dir=None,
) -> tuple[list[dict], list[dict]]:
    """Score every ``status: ok`` image of a visualize run; write evaluation.csv / .md.
    A row with a non-finite activation or probability is never scored, whatever its status
    (it counts in ``not_ok``).

    ``realism_dir``: folders of real photos for the realism figures (default: the shared
    tiny-imagenet, nips17-dev and imagenet-val-1k; their photos of the run's classes, else all of
    imagenet-val-1k).

    Returns (rows, summaries): one row per image and evaluator, one summary per evaluator."""
    run_dir = Path(run_dir)
    batch_size = int_value("batch_size", batch_size)
    nearest = int_value("nearest", nearest, 0)
    config, results = read_run(run_dir)
    check_writable_dir(run_dir, "run_dir")  # the reports go there: an error now, not after the scoring
    n_all = len(results)
    nonfinite = sum(result_status(r) == STATUS_NAN for r in results)
    results = [r for r in results if result_ok(r) and isinstance(r.image, str) and r.image]
    excluded = n_all - len(results)
    if excluded:
        log.warning("%d result(s) without status ok (e.g. dead targets) are not scored", excluded)
    if nonfinite:
        log.warning("%d result(s) with a non-finite activation (status nan) are not scored", nonfinite)
    if not results:
        raise ValueError(f"{run_dir}/results.json lists no generated images")
    images, bad = load_images([run_dir / r.image for r in results])
    if bad:
        raise FileNotFoundError(f"unreadable generated image(s): {[results[i].image for i in bad]}")
    generator = config.get("classifier", {})
    generator = generator.get("name", generator) if isinstance(generator, dict) else generator
    ref = None
    run_classes = sorted({c for r in results for c in r.classes})
    try:
        realism_ref = realism_references(run_classes, realism_dir, within=reference_classes)
    except FileNotFoundError as e:  # no photos to compare with: the rest of the evaluation stands
        if realism_dir:
            raise
        log.warning("no realism figures: %s", e)
        realism_ref = None
    rows, summaries = [], []
    for name in evaluators:
        clf = build_classifier(name) if isinstance(name, str) else name
        check_class_range(run_dir / "results.json", results, len(clf.classes), f"evaluator {clf.name}")
        if str(generator) == clf.name:
            log.warning("evaluator %s is the generating classifier: its scores are not independent", clf.name)
        if ref is None:
            ref = load_reference(reference_dir, clf.classes, reference_classes)
        refs = reference_embeddings(clf, ref, batch_size, cache_dir, use_cache)
        scored = score(clf, images, [r.classes for r in results], refs, batch_size, nearest=nearest)
        for r, s in zip(results, scored):
            rows.append(
                {
                    "target": r.target,
                    "image": r.image,
                    "activation": r.activation,
                    "generator_prob": r.prob,
                    **s,
                }
            )
        looks = {}
        if realism_ref is not None:
            figures = reference_figures(clf, realism_ref, REALISM_SIZE, batch_size, cache_dir, use_cache)
            looks = realism(clf, images, figures, batch_size)
        summaries.append(
            {
                "evaluator": clf.name,
                **summarize(scored),
                **looks,
                "not_ok": excluded,
                "skipped_references": len(refs.skipped),
            }
        )
    note = realism_ref.note if realism_ref is not None else None
    write_reports(run_dir, rows, summaries, config, reference=ref, realism_note=note)
    return rows, summaries


def write_reports(run_dir, rows, summaries, config=None, reference=None, realism_note=None) -> None:
    run_dir = Path(run_dir)
    buf = io.StringIO(newline="")
    cols = list(dict.fromkeys(k for r in rows for k in r))
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    w.writerows(rows)
    write_bytes_atomic(run_dir / "evaluation.csv", buf.getvalue().encode("utf-8"))
    gen = (config or {}).get("classifier", "")
    gen = gen.get("name", gen) if isinstance(gen, dict) else gen
    ref_note = f"{reference.folder} ({len(reference)} images)" if reference is not None else "none"
    md = [
        f"# Evaluation of {run_dir.name}",
        "",
        f"Generated with classifier `{gen}`; scored by independent evaluators. "
        f"Plausibility = rank (1 = nearest) of the target class's real image among the "
        f"reference images {ref_note} by cosine similarity in the evaluator's penultimate embedding.",
        "",
        *(
            [
                f"Realism (at {REALISM_SIZE} px): KID x 1000 (± its spread over subsets) in the "
                f"evaluator's pooled features, colourfulness and RMS contrast medians; reference "
                f"photos (`ref_*`): {realism_note}.",
                "",
            ]
            if realism_note
            else []
        ),
        "## Summary",
        "",
        markdown_table(summaries, SUMMARY_COLUMNS),
        "",
        "## Per image",
        "",
        markdown_table(rows, ROW_COLUMNS),
        "",
    ]
    write_text_atomic(run_dir / "evaluation.md", "\n".join(md))
