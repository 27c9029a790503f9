"""The console scripts of ``[project.scripts]`` in pyproject.toml.

``genviz-visualize ARGS`` is ``python <checkout>/visualize.py ARGS`` run from any directory, and
likewise ``genviz-train-dae``, ``genviz-atlas``, ``genviz-audit`` and ``genviz-evaluate``
(``genviz-sweep`` is :func:`genviz.sweep.main`).  Each runs the checkout's own script as
``__main__``, with the checkout first on ``sys.path`` as ``python script.py`` has it, so the two
ways are one: the same ``conf/`` (found next to the script, where its ``hydra.main`` looks), the
same Hydra job name (the script's name: ``.hydra/``, ``<name>.log``), the same checks before
Hydra starts, and Lightning's DDP re-launching the script itself.  The scripts and ``conf/``
live in the checkout, not in the package: the commands need an editable install
(``pip install -e .``).
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the checkout: visualize.py, train_dae.py, conf/


def run_script(name: str) -> None:
    """Run ``<checkout>/<name>`` as ``python <checkout>/<name> <the command's arguments>``."""
    path = ROOT / name
    if not path.is_file() or not (ROOT / "conf").is_dir():
        print(
            f"error: {name} and conf/ are not in {ROOT}: the genviz commands run the scripts of a "
            "source checkout; install it with `pip install -e .` (or run `python <checkout>/"
            f"{name}`)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    if str(ROOT) not in sys.path[:1]:
        sys.path.insert(0, str(ROOT))
    runpy.run_path(str(path), run_name="__main__")


def visualize() -> None:
    run_script("visualize.py")


def train_dae() -> None:
    run_script("train_dae.py")


def atlas() -> None:
    run_script("atlas.py")


def audit() -> None:
    run_script("audit.py")


def evaluate() -> None:
    run_script("evaluate.py")
