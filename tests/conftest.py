import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CONF = str(ROOT / "conf")
SHARED = Path(os.environ.get("GENVIZ_SHARED", ROOT.parent / "shared"))
VAL1K = SHARED / "data" / "imagenet-val-1k"


def compose_cfg(config_name: str = "visualize", overrides=(), return_hydra_config: bool = False):
    """The real configs, composed as Hydra would (hydra.runtime values are not available here)."""
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(
            config_name=config_name, overrides=list(overrides), return_hydra_config=return_hydra_config
        )


TINY = ["classifier=tiny", "generator=tiny", "progress=false", "out_dir=unused"]

# train_dae overrides for a DAE that trains in seconds on the CPU: 16 px, 3 decoder stages
TINY_DAE = [
    "dae=cpu_small",
    "dae.image_size=16",
    "dae.decoder.code_size=2",
    "dae.decoder.channels=[8,8,8]",
    "dae.encoder.channels=[4,4,4,4]",
    "dae.encoder.hidden=16",
    "dae.warmup_steps=0",
    "data=folder",
    "data.batch_size=4",
    "data.num_workers=0",
    "data.val_size=4",
    "trainer=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
    "name=tiny",
]


def make_images(folder: Path, n: int = 16, size: int = 24) -> Path:
    """``n`` smooth random-frequency RGB PNGs in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        f = rng.uniform(1, 4, 3)
        img = np.stack([np.sin(2 * np.pi * (f[c] * xx + yy * c)) for c in range(3)], -1) * 0.5 + 0.5
        Image.fromarray((img * 255).astype(np.uint8)).save(folder / f"img{i:02d}.png")
    return folder


def atlas_cfg(tmp_path: Path, *overrides: str):
    """The atlas config on the tiny classifier and generator (2 steps), out_dir ``tmp_path/atlas``."""
    return compose_cfg(
        "atlas",
        [
            "classifier=tiny",
            "generator=tiny",
            "generator.steps=2",
            "progress=false",
            f"out_dir={tmp_path / 'atlas'}",
            "cell=32",
            *overrides,
        ],
    )


def tiny_cfg(tmp_path: Path, *overrides: str):
    """The train_dae config with TINY_DAE on 16 images in ``tmp_path/images``, run dir ``tmp_path/run``."""
    images = tmp_path / "images"
    if not images.exists():
        make_images(images)
    return compose_cfg(
        "train_dae",
        [*TINY_DAE, f"data.root={images}", f"paths.output_dir={tmp_path / 'run'}", *overrides],
    )


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)
    yield


class Counting:
    """The real generate(), counting the targets it is asked to render."""

    def __init__(self):
        self.targets = []

    def __call__(self, cfg, classifier=None):
        from genviz.app import generate

        self.targets += list(cfg.target)
        return generate(cfg, classifier=classifier)
