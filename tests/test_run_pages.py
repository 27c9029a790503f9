"""What a visualize / atlas / sweep run leaves to look at (index.html, activation.png, GIFs) and
what it sends to an experiment tracker (logger=csv|tensorboard|wandb)."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, TINY, compose_cfg
from PIL import Image

TARGETS = "target=[class:1,channel:relu2:0]"


def _visualize(args, cwd, env=None):
    return subprocess.run(
        [sys.executable, str(ROOT / "visualize.py"), *[a for a in args if a.startswith("-")], "classifier=tiny",
         "generator=tiny", "progress=false", "generator.steps=6", *[a for a in args if not a.startswith("-")]],
        cwd=cwd, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})},
    )  # fmt: skip


def _refs_resolve(page: Path) -> list[str]:
    refs = re.findall(r'(?:src|href)="([^"#][^"]*)"', page.read_text())
    missing = [r for r in refs if not r.startswith("data:") and not (page.parent / r).is_file()]
    assert not missing, missing
    return refs


def test_visualize_run_page_curves_and_gifs(tmp_path):
    p = _visualize([TARGETS, "frames_every=2", f"hydra.run.dir={tmp_path}"], ROOT)
    assert p.returncode == 0, p.stderr
    page = tmp_path / "index.html"
    text = page.read_text()
    assert (
        "class:1" in text and "channel:relu2:0" in text and len(re.findall(r'class="card( bad)?"', text)) == 2
    )
    refs = _refs_resolve(page)
    assert "activation.png" in refs and "grid.png" in refs
    gifs = sorted((tmp_path / "frames").glob("*.gif"))
    assert len(gifs) == 2 and all(g.relative_to(tmp_path).as_posix() in refs for g in gifs)
    with Image.open(gifs[0]) as im:
        assert im.n_frames == 4  # steps 2, 4, 6 and the final image
    with Image.open(tmp_path / "activation.png") as im:
        assert im.size == (720, 400)
    res = json.loads((tmp_path / "results.json").read_text())["results"]
    assert all(r["gif"].endswith(".gif") for r in res)


def test_logger_tensorboard_event_file_reads_back(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    p = _visualize([TARGETS, "logger=tensorboard", f"hydra.run.dir={tmp_path}"], ROOT)
    assert p.returncode == 0, p.stderr
    events = list(tmp_path.rglob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = EventAccumulator(str(events[0].parent), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    assert set(tags["scalars"]) == {"activation/000_class_1", "activation/001_channel_relu2_0"}
    assert len(acc.Scalars("activation/000_class_1")) == 6
    assert set(tags["images"]) == {"image/000_class_1", "image/001_channel_relu2_0"}
    assert "config/text_summary" in tags["tensors"]


def test_logger_csv_has_one_curve_per_target(tmp_path):
    p = _visualize([TARGETS, "logger=csv", f"hydra.run.dir={tmp_path}"], ROOT)
    assert p.returncode == 0, p.stderr
    (metrics,) = tmp_path.rglob("metrics.csv")
    rows = list(csv.DictReader(metrics.open()))
    assert len(rows) == 6 and {"activation/000_class_1", "activation/001_channel_relu2_0"} <= set(rows[0])


def test_logger_wandb_offline_writes_a_syncable_run(tmp_path):
    p = _visualize(
        [TARGETS, "frames_every=3", "logger=wandb", f"hydra.run.dir={tmp_path}"],
        ROOT,
        env={"WANDB_MODE": "offline", "WANDB_SILENT": "true"},
    )
    assert p.returncode == 0, p.stderr
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("run-*.wandb"))  # what `wandb sync` uploads
    media = [f.relative_to(runs[0]).as_posix() for f in runs[0].rglob("*") if f.suffix in (".png", ".gif")]
    assert any("images/image/000_class_1_" in m for m in media)  # the final image of each target
    assert sum("videos/optimization/" in m and m.endswith(".gif") for m in media) == 2  # its optimization


def test_multirun_sweep_lands_in_one_page_and_one_tensorboard_dir(tmp_path):
    p = _visualize(
        ["-m", "target=class:1", "seed=0,1", "logger=tensorboard", f"hydra.sweep.dir={tmp_path}"], tmp_path
    )
    assert p.returncode == 0, p.stderr
    page = tmp_path / "index.html"
    text = page.read_text()
    refs = _refs_resolve(page)
    assert "0/index.html" in refs and "1/index.html" in refs and "seed" in text
    versions = sorted(d.name for d in (tmp_path / "tensorboard").iterdir())
    assert versions == ["job_0", "job_1"]  # trials side by side in one TensorBoard directory


def test_atlas_run_page(tmp_path):
    from genviz.atlas import run_atlas

    cfg = compose_cfg("atlas", [*TINY, "classes=0:3", "steps=3", f"out_dir={tmp_path}"])
    counts = run_atlas(cfg)
    page = counts["page"]
    refs = _refs_resolve(page)
    assert sum(r.startswith("images/") for r in refs) == 3
    assert any(r.startswith("sheets/") for r in refs)


@pytest.mark.parametrize("logger", ["none", "csv"])
def test_logger_configs_compose_for_visualize(logger):
    cfg = compose_cfg("visualize", [*TINY, f"logger={logger}"])
    assert (logger == "none") == (not cfg.get("logger"))


def test_wandb_multirun_gives_each_job_its_own_run_in_one_group(tmp_path):
    p = _visualize(
        ["-m", "target=class:1", "seed=0,1", "logger=wandb", f"hydra.sweep.dir={tmp_path}"],
        tmp_path,
        env={"WANDB_MODE": "offline", "WANDB_SILENT": "true"},
    )
    assert p.returncode == 0, p.stderr
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 2  # not one run reused by both jobs
