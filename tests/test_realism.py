"""Realism figures: colourfulness, RMS contrast, KID, and the reference photos they compare with."""

import math

import pytest
import torch

from genviz import realism as RL
from genviz.references import default_reference_dir


def test_grey_image_has_no_colourfulness_and_no_contrast():
    grey = torch.full((3, 3, 16, 16), 0.4)
    assert torch.allclose(RL.colourfulness(grey), torch.zeros(3))
    assert torch.allclose(RL.rms_contrast(grey), torch.zeros(3))


def test_colourfulness_and_contrast_rank_images_as_a_person_would():
    g = torch.Generator().manual_seed(0)
    vivid = torch.rand(4, 3, 32, 32, generator=g)
    pale = 0.5 + 0.1 * (vivid - 0.5)  # the same image at a tenth of the contrast
    gray_noise = vivid[:, :1].expand(4, 3, 32, 32)  # contrast, no colour
    assert (RL.colourfulness(vivid) > 5 * RL.colourfulness(pale)).all()
    assert (RL.rms_contrast(vivid) > 5 * RL.rms_contrast(pale)).all()
    assert torch.allclose(RL.colourfulness(gray_noise), torch.zeros(4), atol=1e-3)
    assert (RL.rms_contrast(gray_noise) > 0.2).all()
    red = torch.zeros(1, 3, 8, 8)
    red[:, 0] = 1.0  # a flat pure red: no spread, all mean: 0.3 * |(255, 127.5)|
    assert RL.colourfulness(red).item() == pytest.approx(0.3 * math.hypot(255, 127.5), rel=1e-4)


def test_kid_of_a_set_against_itself_is_about_zero_and_grows_with_a_shift():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(200, 16, generator=g)
    b = torch.randn(200, 16, generator=g)  # the same distribution
    same, se = RL.kid(a, b)
    shifted, _ = RL.kid(a, b + 1.0)
    assert abs(same) < 3 * se + 0.05
    assert shifted > 10 * max(abs(same), se)
    assert RL.kid(a, b) == (same, se)  # seeded: the same figures again


def test_kid_needs_two_images():
    with pytest.raises(ValueError, match="at least 2"):
        RL.kid(torch.randn(5, 4), torch.randn(1, 4))


def test_realism_references_prefer_the_classes_own_photos():
    folder = default_reference_dir()
    if not folder.is_dir():
        pytest.skip(f"shared photos not found at {folder} (set GENVIZ_SHARED)")
    ref = RL.realism_references([1], minimum=2)  # goldfish: tiny-imagenet's 50, nips17, val-1k
    assert set(ref.classes) == {1} and 2 <= len(ref.files) <= RL.PER_CLASS
    assert "same 1 of 1 classes" in ref.note
    few = RL.realism_references([1], folders=[folder], within=[0, 1, 2])  # one photo: too few
    assert sorted(set(few.classes)) == [0, 1, 2] and "only 1 photos" in few.note
