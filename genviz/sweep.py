"""Rank the runs of a sweep (Hydra multirun, e.g. ``hydra/sweeper=random``) by their results.

    python -m genviz.sweep multirun/visualize/2026-11-23_10-00-00 [--by prob|activation|rank]

Reads every ``<job>/results.json`` under the sweep directory and the job's own overrides
(``<job>/.hydra/overrides.yaml``), and prints one row per run, best first: the mean over its
targets of the class probability, rank and activation, the number of targets that ended dead,
seconds per image, and the overrides that differ between runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import yaml

SORT_KEYS = {"prob": True, "activation": True, "rank": False}  # key -> larger is better


def load_runs(sweep_dir: str | Path) -> list[dict]:
    """One dict per finished job: its directory, overrides and mean scores."""
    root = Path(sweep_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"no sweep directory at {str(root)!r}")
    runs = []
    for res in sorted(root.rglob("results.json")):
        job = res.parent
        rows = json.loads(res.read_text())["results"]
        if not rows:
            continue
        ov_file = job / ".hydra" / "overrides.yaml"
        overrides = yaml.safe_load(ov_file.read_text()) if ov_file.exists() else []
        probs = [r["prob"] for r in rows if r.get("prob") is not None]
        ranks = [r["rank"] for r in rows if r.get("rank") is not None]
        runs.append(
            {
                "dir": str(job.relative_to(root)) if job != root else ".",
                "overrides": dict(o.split("=", 1) for o in overrides if "=" in o),
                "n": len(rows),
                "prob": statistics.fmean(probs) if probs else float("nan"),
                "rank": statistics.fmean(ranks) if ranks else float("nan"),
                "activation": statistics.fmean(r["activation"] for r in rows),
                "dead": sum(r.get("status") != "ok" for r in rows),
                "seconds": statistics.fmean(r.get("seconds", 0.0) for r in rows),
            }
        )
    if not runs:
        raise FileNotFoundError(f"no results.json under {str(root)!r}: has the sweep finished a run yet?")
    return runs


def rank_runs(runs: list[dict], by: str = "prob") -> list[dict]:
    if by not in SORT_KEYS:
        raise ValueError(f"--by must be one of {', '.join(SORT_KEYS)}, got {by!r}")
    larger = SORT_KEYS[by]

    def key(r):
        v = r[by]
        missing = v != v  # NaN (no class targets) goes last
        return (missing, -v if larger else v)

    return sorted(runs, key=key)


def table(runs: list[dict]) -> str:
    """Markdown table; only the overrides that vary between runs get a column."""
    keys = sorted({k for r in runs for k in r["overrides"]})
    varying = [k for k in keys if len({r["overrides"].get(k) for r in runs}) > 1]
    head = ["run", "mean prob", "mean rank", "mean activation", "dead", "s/image", *varying]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in runs:
        cells = [r["dir"], f"{r['prob']:.3f}", f"{r['rank']:.1f}", f"{r['activation']:.3g}",
                 f"{r['dead']}/{r['n']}", f"{r['seconds']:.1f}", *[r["overrides"].get(k, "") for k in varying]]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep_dir")
    ap.add_argument("--by", default="prob", choices=list(SORT_KEYS))
    args = ap.parse_args(argv)
    try:
        runs = rank_runs(load_runs(args.sweep_dir), args.by)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
