"""Audit report: a section per class, images inlined, a figure, and the missing-DAE note."""

import json
import re

import pytest
from conftest import compose_cfg
from PIL import Image

from genviz.audit import generator_configs, run_audit
from genviz.references import default_reference_dir

CLASSES = ["crib", "cradle", "tench"]  # 520, 516, 0
POOL = [0, 1, 516, 520, 668, 949]


def audit_cfg(tmp_path, *overrides):
    return compose_cfg(
        "audit",
        [
            f"classes=[{','.join(CLASSES)}]",
            "generator=tiny",  # 16 px untrained generator, 2 steps: seconds
            "steps=2",
            f"reference_classes=[{','.join(map(str, POOL))}]",
            f"cache_dir={tmp_path / 'cache'}",
            f"out_dir={tmp_path / 'audit'}",
            "thumb=64",
            "nearest=3",
            *overrides,
        ],
    )


@pytest.fixture(scope="module")
def audit(tmp_path_factory):
    if not default_reference_dir().is_dir():
        pytest.skip("shared reference images not found (set GENVIZ_SHARED)")
    return run_audit(audit_cfg(tmp_path_factory.mktemp("a")))


def test_report_has_a_section_per_class(audit):
    text = audit["html"].read_text()
    ids = re.findall(r'<section class="audit-class" id="class-(\d+)">', text)
    assert ids == ["520", "516", "0"]
    sections = text.split('<section class="audit-class"')[1:]
    for s in sections:
        # one real example (flat folder: one per class), the generated image, 3 neighbours
        assert s.count("<img") == 1 + 1 + 3
        assert "Other classes it activates most" in s and "untrained generator" in s
    assert "No DAE checkpoint given" in text and "pretrained generator</h3>" not in text


def test_report_is_self_contained(audit):
    srcs = re.findall(r'src="([^"]*)"', audit["html"].read_text())
    assert len(srcs) == 3 * 5 and all(s.startswith("data:image/png;base64,") for s in srcs)


def test_numbers_and_neighbours(audit):
    data = json.loads(audit["json"].read_text())
    tench = data["classes"][2]["generated"]["untrained"]
    assert data["classes"][2]["name"] == "tench" and tench["class"] == 0
    assert 1 <= tench["rank"] <= 1000 and len(tench["others"]) == 5
    assert all(o["class"] != 0 for o in tench["others"])  # "other" classes exclude the target
    assert {n["class"] for n in tench["nearest"]} <= set(POOL)
    sims = [n["similarity"] for n in tench["nearest"]]
    assert sims == sorted(sims, reverse=True)
    assert "crib" in data["classes"][0]["real"][0]


def test_figure(audit):
    with Image.open(audit["figure"]) as im:
        # 3 rows (classes) x 5 columns (real, untrained, 3 nearest) of 64 px cells
        assert im.size == (5 * (64 + 4) + 4, 3 * (64 + 4 + 14) + 4)


def test_missing_checkpoint_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        generator_configs(audit_cfg(tmp_path, f"checkpoint={tmp_path / 'none.ckpt'}"))
    gens, note = generator_configs(audit_cfg(tmp_path))
    assert list(gens) == ["untrained"] and "No DAE checkpoint" in note


def test_the_start_each_image_grew_from_is_kept(tmp_path):
    """A generator that starts from real photos' codes says which (``start``); the audit keeps it."""
    if not default_reference_dir().is_dir():
        pytest.skip("shared reference images not found (set GENVIZ_SHARED)")
    from genviz.app import generate

    def with_starts(cfg, classifier=None):
        return [
            {**r, "start": f"a photo of class {k}"}
            for k, r in enumerate(generate(cfg, classifier=classifier))
        ]

    out = run_audit(audit_cfg(tmp_path), generate_fn=with_starts)
    data = json.loads(out["json"].read_text())
    assert [c["generated"]["untrained"]["start"] for c in data["classes"]] == [
        f"a photo of class {k}" for k in range(3)
    ]
