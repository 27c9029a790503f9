"""Rank the runs of a sweep (Hydra multirun, e.g. ``hydra/sweeper=random``) by their results.

    python -m genviz.sweep multirun/visualize/2026-11-23_10-00-00 [--by prob|activation|rank]

Reads every ``<job>/results.json`` under the sweep directory and the job's own overrides
(``<job>/.hydra/overrides.yaml``), and prints one row per run, best first: the mean over its
targets of the class probability, rank and activation, the number of targets that ended dead,
seconds per image, and the overrides that differ between runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import yaml

from .atomic import regular_file
from .runs import STATUS_OK, RunFileError, finite_number, read_results, result_ok

SORT_KEYS = {"prob": True, "activation": True, "rank": False}  # key -> larger is better


def _ok(r) -> bool:
    """A row that records status ok and whose numbers are finite (an older results.json may
    say ok beside a NaN activation); a row without a status is not counted ok here."""
    return r.has("status") and r.status == STATUS_OK and result_ok(r)


def _mean(values) -> float:
    """Mean of the finite values (NaN when there is none)."""
    vals = [float(v) for v in values if finite_number(v)]
    return statistics.fmean(vals) if vals else float("nan")


def read_overrides(path: Path) -> dict[str, str]:
    """A job's ``.hydra/overrides.yaml`` as {key: value}; missing: {}; not a regular file, not
    YAML or not a list of ``key=value`` strings: {} with a warning naming it (the run is listed
    without its overrides)."""
    if not path.exists():
        return {}
    try:
        overrides = yaml.safe_load(regular_file(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        print(
            f"warning: ignoring {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
            file=sys.stderr,
        )
        return {}
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        print(f"warning: ignoring {path}: not a list of key=value strings", file=sys.stderr)
        return {}
    return dict(o.split("=", 1) for o in overrides if "=" in o)


def load_runs(sweep_dir: str | Path) -> list[dict]:
    """One dict per finished job: its directory, overrides and mean scores."""
    root = Path(sweep_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"no sweep directory at {str(root)!r}")
    runs = []
    for res in sorted(root.rglob("results.json")):
        job = res.parent
        try:
            _, rows = read_results(res)
        except RunFileError as e:  # a job killed while writing it...
            print(f"warning: skipping {res}: not a readable results.json ({e})", file=sys.stderr)
            continue
        if not rows:
            continue
        probs = [r.prob for r in rows if r.prob is not None]
        ranks = [r.rank for r in rows if r.rank is not None]
        acts = [r.activation for r in rows]
        runs.append(
            {
                "dir": str(job.relative_to(root)) if job != root else ".",
                "overrides": read_overrides(job / ".hydra" / "overrides.yaml"),
                "n": len(rows),
                "prob": _mean(probs),
                "rank": _mean(ranks),
                "activation": _mean(acts),
                "dead": sum(not _ok(r) for r in rows),
                "seconds": statistics.fmean(r.seconds if r.has("seconds") else 0.0 for r in rows),
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


def write_page(runs: list[dict], sweep_dir: str | Path, by: str = "prob") -> Path | None:
    """``<sweep_dir>/index.html``: the ranked table, each run's grid linked to its own page
    (None, nothing written, when ``sweep_dir`` is a single run: its page is its own)."""
    from .report import write_table_page

    if any(r["dir"] == "." for r in runs):  # a single run's directory: its own index.html stays
        return None

    keys = sorted({k for r in runs for k in r["overrides"]})
    varying = [k for k in keys if len({r["overrides"].get(k) for r in runs}) > 1]
    rows = []
    for r in runs:
        job = Path(r["dir"])
        row = {
            "run": r["dir"],
            "mean prob": f"{r['prob']:.3f}",
            "mean rank": f"{r['rank']:.1f}",
            "mean activation": f"{r['activation']:.3g}",
            "not ok": f"{r['dead']}/{r['n']}",
            "s/image": f"{r['seconds']:.1f}",
            **{k: r["overrides"].get(k, "") for k in varying},
        }
        if (Path(sweep_dir) / job / "grid.png").is_file():
            row["grid"] = (job / "grid.png").as_posix()
        if (Path(sweep_dir) / job / "index.html").is_file():
            row["page"] = (job / "index.html").as_posix()
        rows.append(row)
    columns = ["run", "mean prob", "mean rank", "mean activation", "not ok", "s/image", *varying]
    return write_table_page(rows, columns, sweep_dir, f"sweep {Path(sweep_dir).name}, best by {by} first")


try:  # written at the end of every visualize multirun (conf/visualize.yaml, hydra.callbacks)
    from hydra.experimental.callback import Callback as _HydraCallback
except ImportError:  # pragma: no cover - Hydra < 1.1
    _HydraCallback = object


class SweepPage(_HydraCallback):
    """Hydra callback: after a multirun, rank its runs into ``<sweep dir>/index.html``."""

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = config.hydra.sweep.dir
        try:
            runs = rank_runs(load_runs(sweep_dir))
        except FileNotFoundError:
            return  # no job finished: nothing to show
        write_page(runs, sweep_dir)


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
    page = write_page(runs, args.sweep_dir, args.by)
    if page:
        print(f"page: {page}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
