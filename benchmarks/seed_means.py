"""Means over seeds of benchmarks/quality.py tables: the figures RESULTS.md quotes "over seeds 0-3".

    python benchmarks/seed_means.py benchmarks/results/quality_odd_dae_fast_bank_seed{0,1,2,3}.md \
        benchmarks/results/quality_odd_maco_fourier_seed{1,2}.md benchmarks/results/quality_odd_maco_seed0.md \
        benchmarks/results/quality_odd_{maco,fourier}_seed3.md \
        benchmarks/results/quality_odd_realism_seed0.md:dae_fast=dae_fast_sampled

Each file is one run of quality.py (its seed is read from the file); ``FILE:old=new`` renames a
method of that file (a run made before the method's configuration changed).  One line per
method and evaluator: the seeds found, the mean top-1 and top-5 (each seed's in brackets), the
median of the seeds' plausibility medians, and the mean KID x 1000, colourfulness and contrast
(blank where the files have no realism columns).  Reads only the markdown quality.py writes.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from pathlib import Path

FIGURES = {  # quality.py's column -> name here
    "top-1": "top1",
    "top-5": "top5",
    "plaus. median": "plaus",
    "KID x1000": "kid",
    "colourful.": "colour",
    "contrast": "contrast",
}


def read_table(path: Path, rename: dict[str, str] | None = None) -> tuple[int, list[dict]]:
    """(seed, rows) of one quality.py markdown file; each row {method, evaluator, figure: float}."""
    text = path.read_text()
    m = re.search(r"\(seed (\d+),", text)
    if not m:
        raise ValueError(f"{path}: no '(seed N,' line: not a benchmarks/quality.py table")
    by = re.search(
        r"scored by the independent evaluator(?:\(s\))? `([^`]+)`", text
    )  # tables without the column
    default_evaluator = by.group(1) if by else ""
    columns, rows = None, []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[:1] == ["method"] and "top-1" in cells:
            columns = cells
            continue
        if columns is None or not line.startswith("| ") or set(line) <= set("|- "):
            continue
        if len(cells) != len(columns):  # the per-class table that follows
            break
        row = dict(zip(columns, cells))
        out = {
            "method": (rename or {}).get(row["method"], row["method"]),
            "evaluator": row.get("evaluator", default_evaluator),
        }
        for col, name in FIGURES.items():
            value = row.get(col, "").split("±")[0].strip()
            out[name] = float(value) if value else None
        rows.append(out)
    if columns is None:
        raise ValueError(f"{path}: no results table")
    return int(m.group(1)), rows


def _mean(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows if r[key] is not None]
    return statistics.mean(vals) if vals else None


def seed_means(tables: list[tuple[int, list[dict]]]) -> list[dict]:
    """One summary per (method, evaluator), in first-seen order."""
    runs: dict[tuple[str, str], dict[int, dict]] = {}
    for seed, rows in tables:
        for r in rows:
            runs.setdefault((r["method"], r["evaluator"]), {})[seed] = r
    out = []
    for (method, evaluator), by_seed in runs.items():
        seeds = sorted(by_seed)
        rows = [by_seed[s] for s in seeds]

        out.append(
            {
                "method": method,
                "evaluator": evaluator,
                "seeds": seeds,
                "top1": _mean(rows, "top1"),
                "top1_each": [r["top1"] for r in rows],
                "top5": _mean(rows, "top5"),
                "plaus": statistics.median(r["plaus"] for r in rows),
                "plaus_each": [r["plaus"] for r in rows],
                "kid": _mean(rows, "kid"),
                "kid_each": [r["kid"] for r in rows],
                "colour": _mean(rows, "colour"),
                "contrast": _mean(rows, "contrast"),
            }
        )
    return out


def markdown(summaries: list[dict]) -> str:
    def f(v, fmt):
        return "" if v is None else fmt % v

    def each(vals, fmt):
        return "(" + " ".join(f(v, fmt) for v in vals) + ")"

    lines = [
        "| method | evaluator | seeds | top-1 | top-5 | plaus. median | KID x1000 | colourful. | contrast |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        kid = "" if s["kid"] is None else f"{s['kid']:.1f} {each(s['kid_each'], '%.0f')}"
        lines.append(
            f"| {s['method']} | {s['evaluator']} | {','.join(map(str, s['seeds']))} | "
            f"{s['top1']:.2f} {each(s['top1_each'], '%.2f')} | {f(s['top5'], '%.2f')} | "
            f"{s['plaus']:.0f} {each(s['plaus_each'], '%.0f')} | {kid} | {f(s['colour'], '%.1f')} | "
            f"{f(s['contrast'], '%.3f')} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", help="quality.py tables; FILE:old=new renames a method of FILE")
    args = ap.parse_args(argv)
    tables = []
    for spec in args.files:
        path, _, ren = spec.partition(":")
        rename = dict([ren.split("=", 1)]) if ren else None
        try:
            tables.append(read_table(Path(path), rename))
        except (OSError, ValueError) as e:
            ap.error(str(e))
    print(markdown(seed_means(tables)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
