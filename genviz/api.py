"""The command line's runs from Python (a notebook, a script), with results that show themselves.

    from genviz.api import visualize
    res = visualize("classifier=efficientnet_lite0", "generator=dae_fast", "target=[class:goldfish,class:lemon]")
    res            # in Jupyter: a labelled grid; res.images is [N, 3, H, W] in [0, 1]
    res.save("outputs/goldfish")   # the same files as visualize.py

The overrides are exactly ``visualize.py``'s (README, "Config menu"); ``config(...)`` composes
any of the repo's configs (``visualize``, ``audit``, ``atlas``, ``evaluate``).
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import torch
from omegaconf import DictConfig

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def config(*overrides: str, name: str = "visualize") -> DictConfig:
    """Compose ``conf/<name>.yaml`` with Hydra overrides, as the scripts do."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if not CONF_DIR.is_dir():
        raise FileNotFoundError(
            f"genviz configs not found at {CONF_DIR}: install genviz from its repository (pip install -e .)"
        )
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(name, overrides=list(overrides))


def _png(img: torch.Tensor | object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def caption(r: dict) -> str:
    """One line for a result: target, the classifier's probability and rank, status."""
    text = r["target"]
    if r.get("prob") is not None:
        text += f"  p {r['prob']:.3f}  rank {r['rank']}"
    else:
        text += f"  act {r['activation']:.3g}"
    if r.get("status", "ok") != "ok":
        text += f"  [{r['status']}]"
    return text


class Results(list):
    """The list of per-target result dicts that ``genviz.app.generate`` returns, shown as a
    labelled grid in Jupyter (``_repr_png_``, ``_repr_html_``)."""

    def __init__(self, results, cfg: DictConfig | None = None):
        super().__init__(results)
        self.cfg = cfg

    @property
    def images(self) -> torch.Tensor:
        return torch.stack([r["tensor"] for r in self])

    def grid(self, cell: int | None = None):
        from .images import grid

        return grid(self.images, [r["target"][:24] for r in self], cell=cell)

    def save(self, out_dir: str | Path, overwrite: bool = False) -> Path:
        """Write the run's files (images, grid, results.json, config) like visualize.py, and
        like it claim ``out_dir`` first (:func:`genviz.rundir.claim_output`): a directory that
        holds another run's results.json is refused unless ``overwrite``, one in use by a live
        run always is."""
        from omegaconf import open_dict

        from .app import save
        from .rundir import claim_output

        cfg = self.cfg.copy() if self.cfg is not None else None
        if cfg is not None and "out_dir" in cfg:
            with open_dict(cfg):
                cfg.out_dir = str(out_dir)  # composed outside a Hydra run: no hydra:runtime to resolve
        with claim_output(out_dir, overwrite=overwrite) as out:
            return save(list(self), out, cfg)

    def _repr_png_(self) -> bytes:
        return _png(self.grid())

    def _repr_html_(self) -> str:
        from .images import to_pil

        figures = []
        for r in self:
            b64 = base64.b64encode(_png(to_pil(r["tensor"]))).decode()
            figures.append(
                '<figure style="display:inline-block;margin:4px;text-align:center;font-size:12px">'
                f'<img src="data:image/png;base64,{b64}" width="160" height="160">'
                f"<figcaption>{html.escape(caption(r))}</figcaption></figure>"
            )
        return "<div>" + "".join(figures) + "</div>"


def visualize(*overrides: str, classifier=None) -> Results:
    """``python visualize.py OVERRIDES`` without writing files (``.save(dir)`` writes them).
    Pass ``classifier=`` (a built genviz Classifier) to reuse one across calls."""
    from .app import generate

    cfg = config(*overrides)
    return Results(generate(cfg, classifier=classifier), cfg)
