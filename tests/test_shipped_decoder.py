"""The decoder genviz ships: present in the package, identical to its record, loadable safely,
and what generator=dae / dae_fast use when no checkpoint is given."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from conftest import compose_cfg

from genviz.generator import SHIPPED_DECODER, decoder_from_checkpoint

ROOT = Path(__file__).resolve().parents[1]
RECORD = json.loads((ROOT / "benchmarks/results/dae_trunk_lite0.json").read_text())


def test_shipped_decoder_matches_its_record_and_loads():
    assert SHIPPED_DECODER.is_file()
    assert SHIPPED_DECODER.stat().st_size <= 25e6
    assert hashlib.sha256(SHIPPED_DECODER.read_bytes()).hexdigest() == RECORD["sha256"]
    torch.load(SHIPPED_DECODER, weights_only=True)  # plain tensors and values only
    dec = decoder_from_checkpoint(None)
    assert dec.code_dim == 3200 and dec.code_stats is not None
    assert dec.code_stats["mean"].shape == (3200,) and (dec.code_stats["std"] > 0).all()
    assert {k: getattr(dec, k) for k in ("code_channels", "code_size", "upsample")} == {
        k: RECORD["decoder"][k] for k in ("code_channels", "code_size", "upsample")
    }
    with torch.no_grad():
        img = dec(dec.code_stats["mean"].view(1, -1))
    assert img.shape[-1] == img.shape[-2] == dec.output_size() and torch.isfinite(img).all()
    # the training set was the even-index classes only (the odd ones are the held-out benchmark)
    assert RECORD["trained_with"]["encoder"]["classifier"] == "efficientnet_lite0"


def test_dae_configs_use_the_shipped_decoder_by_default():
    for g in ("dae", "dae_fast"):
        assert compose_cfg("visualize", [f"generator={g}"]).generator.param.checkpoint is None


def test_codes_like_the_training_codes_decode_to_distinct_images():
    """Codes drawn like the training codes give images with contrast, and different codes
    different images (the decoder's output depends on its code)."""
    dec = decoder_from_checkpoint("shipped")
    from genviz.generator import to_pixels

    g = torch.Generator().manual_seed(0)
    st = dec.code_stats
    codes = st["mean"] + st["std"] * torch.randn(4, 3200, generator=g)
    with torch.no_grad():
        px = to_pixels(dec(codes)).clamp(0, 1)
    assert px.std(dim=(1, 2, 3)).min() > 0.04  # contrast within each image
    assert (px[0] - px[1]).abs().mean() > 0.03  # different codes, different images


def test_the_shipped_decoder_and_its_bank_saw_only_even_index_classes():
    """The record lists the classes of every photo the last training stage read (ship_decoder.py
    lists them again from the run's config), and the shipped code prior's bank names the class of
    each of its codes: the held-out benchmark's odd classes are among neither."""
    from genviz import code_prior
    from genviz.dae.data import imagenet_wnids

    even = set(imagenet_wnids("even"))
    data = RECORD["training_data"]
    assert data["classes"] == "even" and data["photos"] >= 43_000  # every even-class photo of ../shared/data
    assert any("tiny-imagenet" in r for r in data["roots"])
    assert len(data["wnids"]) >= 400 and set(data["wnids"]) <= even
    prior = code_prior.load(SHIPPED_DECODER.with_suffix(".code_prior.pt"))
    assert len(prior.bank_labels) == len(prior.bank) == 256
    assert len(set(prior.bank_labels)) == 256 and set(prior.bank_labels) <= even  # 256 classes, one code each
