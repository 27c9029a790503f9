"""What a run leaves to look at: index.html, activation.png, GIFs; and the experiment trackers."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from PIL import Image

from genviz.report import activation_png, curve_svg, frames_gif, write_run_page, write_table_page


def _results(n=3, steps=12):
    out = []
    for k in range(n):
        hist = [float(k + s * 0.1) for s in range(steps)]
        out.append(
            {
                "target": f"class:{k}",
                "tensor": torch.rand(3, 16, 16),
                "history": hist,
                "steps": steps if k != 1 else 7,  # target 1 stopped early
                "status": "dead" if k == 2 else "ok",
                "activation": hist[-1],
                "prob": 0.5,
                "rank": 1,
                "top5": [[k, f"name{k}", 0.5]],
            }
        )
    return out


def _pixels(path: Path) -> torch.Tensor:
    with Image.open(path) as im:
        return torch.from_numpy(__import__("numpy").array(im.convert("RGB")))


def test_activation_png_draws_one_coloured_line_per_target(tmp_path):
    path = activation_png(_results(), tmp_path / "activation.png")
    px = _pixels(path)
    assert px.shape == (400, 720, 3)
    # the first three palette colours appear (one line per target)
    for hexcol in ("#1f77b4", "#d62728", "#2ca02c"):
        rgb = torch.tensor([int(hexcol[i : i + 2], 16) for i in (1, 3, 5)], dtype=torch.uint8)
        assert (px == rgb).all(-1).sum() > 20, hexcol
    assert activation_png([{"target": "x", "history": []}], tmp_path / "none.png") is None


def test_frames_gif_keeps_every_frame(tmp_path):
    frames = [torch.full((3, 8, 8), v) for v in (0.0, 0.5, 1.0)]
    path = frames_gif(frames, tmp_path / "f.gif")
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == 3
    assert frames_gif([], tmp_path / "g.gif") is None


def test_run_page_has_every_target_and_no_broken_image(tmp_path):
    results = _results()
    from genviz.images import save_png

    for k, r in enumerate(results):
        r["image"] = str(save_png(r["tensor"], tmp_path / "images" / f"{k}.png").relative_to(tmp_path))
    results[0]["gif"] = str(
        frames_gif([r["tensor"] for r in results], tmp_path / "frames" / "a.gif").relative_to(tmp_path)
    )
    results[1]["start"] = "a photo of <tench> (n01440764)"
    page = write_run_page(
        results, tmp_path, title="t", config_yaml="seed: 0", extra_images=[("curves", "images/0.png")]
    )
    text = page.read_text()
    assert text.count("started from") == 1 and "a photo of &lt;tench&gt; (n01440764)" in text
    for r in results:
        assert r["target"] in text
    refs = re.findall(r'(?:src|href)="([^"]+)"', text)
    assert len(refs) == 3 + 1 + 1  # three images, the GIF link, the extra image
    assert all((tmp_path / ref).is_file() for ref in refs)
    assert text.count('class="card bad"') == 1 and "dead" in text
    assert "<polyline" in text and "seed: 0" in text
    assert "<svg" in curve_svg([1.0])  # too short for a line: an empty box, not an error


def test_table_page_links_rows(tmp_path):
    page = write_table_page(
        [{"run": "0", "prob": 0.5, "grid": "0/grid.png", "page": "0/index.html"}],
        ["run", "prob"],
        tmp_path,
        "sweep",
    )
    text = page.read_text()
    assert 'href="0/index.html"' in text and 'src="0/grid.png"' in text and "<td>0.5</td>" in text


def test_render_result_shows_itself_as_a_grid():
    import io

    from genviz.engine import RenderResult

    res = RenderResult(
        images=torch.rand(2, 3, 16, 16),
        activation=torch.tensor([1.5, float("nan")]),
        history=torch.zeros(3, 2),
        steps=[3, 3],
        dead=[False, False],
        dead_start=[False, False],
        seconds=0.1,
        frames=[],
        nonfinite=[False, True],
    )
    with Image.open(io.BytesIO(res._repr_png_())) as im:
        assert im.format == "PNG" and im.width > 2 * 16
    assert res.grid(["a", "b"]).size == im.size
