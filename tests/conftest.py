import os
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
CONF = str(ROOT / "conf")
SHARED = Path(os.environ.get("GENVIZ_SHARED", ROOT.parent / "shared"))
VAL1K = SHARED / "data" / "imagenet-val-1k"


def compose_cfg(config_name: str = "visualize", overrides=()):
    """The real configs, composed as Hydra would (hydra.runtime values are not available here)."""
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=False)


TINY = ["classifier=tiny", "generator=tiny", "progress=false", "out_dir=unused"]


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
