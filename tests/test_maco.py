"""MACO (issue 20): a fixed magnitude spectrum and an optimized phase, random crops, and the
transparency map."""

import json

import numpy as np
import pytest
import torch
from conftest import compose_cfg
from PIL import Image

from genviz.app import generate, save
from genviz.classifiers.wrapper import Activation
from genviz.maco import (
    load_magnitude,
    maco_param,
    periodic,
    shipped_path,
    signal_of,
    transparency_alpha,
)
from genviz.objectives import BatchObjective, channel
from genviz.options import ConfigError
from genviz.transforms import crops

BASE = ["classifier=tiny", "progress=false", "out_dir=unused", "method=maco", "method.size=32"]


def _run(*overrides):
    return generate(compose_cfg("visualize", [*BASE, *overrides]))


def test_the_shipped_spectrum_is_small_and_whole():
    assert shipped_path().stat().st_size < 400_000
    m = load_magnitude()
    assert m.shape == (3, 224, 113) and torch.isfinite(m).all()
    assert (m.flatten(1)[:, 1:] > 0).all()  # an amplitude at every frequency but 0 (the mean colour)


@pytest.mark.parametrize("size", [32, 33])
def test_the_image_has_the_fixed_magnitude_whatever_the_phase(size):
    m = load_magnitude(size=size).double()  # in double precision, to see the identity
    param = maco_param(2, size, m, seed=0)
    spectra = []
    for scale in (0.1, 1.0, 10.0):  # three unrelated phases, each row its own
        with torch.no_grad():
            param.params[0].copy_(torch.randn_like(param.params[0]) * scale)
            img = param.image_fn().double()
        assert 0 < img.min() and img.max() < 1
        spec = torch.fft.rfft2(signal_of(img, eps=0), norm="ortho").abs()
        err = (spec - m.abs()).abs() / m.abs().mean()
        assert err.max() < 1e-6, (scale, err.max())
        spectra.append(torch.fft.rfft2(signal_of(img, eps=0), norm="ortho").angle())
    assert not torch.allclose(spectra[0], spectra[1], atol=0.1)  # the phase did change


def test_resizing_keeps_the_mean_colour_and_the_contrast():
    stats = []
    for size in (224, 64):
        param = maco_param(1, size, load_magnitude(size=size), seed=0)
        with torch.no_grad():
            img = param.image_fn()
        stats.append((img.mean((0, 2, 3)), img.std()))
    assert torch.allclose(stats[0][0], stats[1][0], atol=0.03)
    assert abs(stats[0][1] - stats[1][1]) < 0.03
    assert 0.1 < stats[0][1] < 0.35  # a photo's RMS contrast is about 0.2


def test_a_random_start_has_no_blob_at_the_origin():
    """Phases standardized to a spread of 1 add up in phase at the origin (the image's corners,
    one point of the periodic image): the corner pixels were white (0.97)."""
    param = maco_param(32, 64, load_magnitude(size=64), seed=0)
    with torch.no_grad():
        param.params[0].copy_(torch.randn_like(param.params[0]))  # 32 random phases
        img = torch.roll(param.image_fn(), (4, 4), (2, 3))  # the origin's 8 x 8 neighbourhood at 0:8
    corner, whole = img[..., :8, :8].mean(), img.mean()
    assert abs(corner - whole) < 0.08, (corner, whole)


def test_periodic_component_removes_the_border_jump():
    x = torch.linspace(0, 1, 16).expand(1, 1, 16, 16)  # a ramp: one big jump across the borders
    p = periodic(x)
    jump = lambda t: (t[..., :, 0] - t[..., :, -1]).abs().mean()  # noqa: E731
    assert jump(p) < 0.3 * jump(x)
    assert torch.allclose(p.mean(), x.mean(), atol=1e-6)


def test_crops_are_shared_by_the_rows_and_scored_as_their_mean():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 40, 40).repeat(2, 1, 1, 1)
    out = crops(3, (0.5, 1.0), 16, gen, noise=0.1)(x)
    assert out.shape == (6, 3, 16, 16)
    assert torch.equal(out[0::2], out[1::2])  # crop k of row 0 and row 1: same box, same noise
    assert not torch.allclose(out[0], out[2])  # two crops of a row differ
    whole = crops(3, (1.0, 1.0), 40, gen)(x)  # a crop of the whole image is the image
    assert torch.allclose(whole, x.repeat(3, 1, 1, 1), atol=1e-5)
    shifted = crops(3, (1.0, 1.0), 40, gen, wrap=True)(x)  # ... or, wrapping, a circular shift of it
    assert not torch.allclose(shifted, x.repeat(3, 1, 1, 1), atol=1e-3)
    assert torch.allclose(shifted.mean((1, 2, 3)), x.mean(), atol=1e-5)
    # BatchObjective: a batch of K * B images is K views of B rows, scored by their mean
    a = torch.rand(6, 4, 5, 5)
    bo = BatchObjective([channel("x", 1), channel("x", 2)], revive=False)
    head = torch.zeros(6, 3)
    _, target = bo.score({"x": Activation(a, a), "head": Activation(head, head)})
    views = a.mean((2, 3)).view(3, 2, 4)
    assert torch.allclose(target, torch.stack([views[:, 0, 1].mean(), views[:, 1, 2].mean()]))


def test_a_maco_run_raises_every_kind_of_target_in_one_batch():
    targets = ["class:1", "channel:relu2:3", "neuron:relu2:1", "layer:relu3", "class:2+class:3"]
    res = _run(f"target=[{','.join(targets)}]", "method.steps=30", "method.crops=2")
    start = _run(f"target=[{','.join(targets)}]", "method.steps=1", "method.crops=2")
    assert [r["target"] for r in res] == targets
    for r, s in zip(res, start, strict=True):
        assert r["activation"] > s["activation"] * 1.02, (r["target"], s["activation"], r["activation"])
        assert r["tensor"].shape == (3, 32, 32) and r["transparency_map"].shape == (3, 32, 32)


def test_the_transparency_map_is_saved_beside_the_image_and_shown(tmp_path):
    res = _run("target=[class:1,layer:relu3]", "method.steps=8", "method.crops=2")
    tmap = res[0]["transparency_map"]
    assert (tmap >= 0).all() and tmap.max() > 0 and tmap.std() > 0
    save(res, tmp_path)
    rows = json.loads((tmp_path / "results.json").read_text())["results"]
    page = (tmp_path / "index.html").read_text()
    for r, row in zip(res, rows, strict=True):
        assert "transparency_map" not in row
        path = tmp_path / row["transparency"]
        assert path.name.endswith("_transparency.png") and path.parent == tmp_path / "images"
        with Image.open(path) as im:
            assert im.mode == "RGBA"
            rgba = torch.from_numpy(np.array(im)).float() / 255
        assert torch.allclose(rgba[..., :3].permute(2, 0, 1), r["tensor"], atol=1 / 255 + 1e-6)
        alpha = transparency_alpha(r["transparency_map"])
        assert torch.allclose(rgba[..., 3], alpha, atol=1 / 255 + 1e-6)
        assert alpha.max() == 1 and alpha.min() < 1  # it fades the pixels that mattered least
        assert f'src="{row["transparency"]}"' in page and f'src="{row["image"]}"' in page


@pytest.mark.parametrize(
    "override,key",
    [
        ("method.crops=0", "method.crops"),
        ("method.crops=two", "method.crops"),
        ("method.crop_scale=[0.8,0.2]", "method.crop_scale"),
        ("method.crop_scale=[0,1]", "method.crop_scale"),
        ("method.crop_scale=0.5", "method.crop_scale"),
        ("method.noise=-1", "method.noise"),
        ("method.noise=loud", "method.noise"),
        ("method.phase_std=0", "method.phase_std"),
        ("method.size=4", "method.size"),
        ("method.magnitude=/nonexistent/spectrum.pt", "method.magnitude"),
    ],
)
def test_bad_config_values_are_one_line_errors(override, key):
    with pytest.raises((ConfigError, FileNotFoundError, ValueError)) as e:
        _run("target=class:1", "method.steps=2", override)
    assert key in str(e.value) and "\n" not in str(e.value)
