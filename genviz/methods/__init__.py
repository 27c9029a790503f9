"""Methods: what is optimized and how, for a batch of targets.

``registry`` holds the registry and :class:`Setup`; ``prior`` is the paper's generator prior;
``baselines`` the pixel-space methods of the other papers (pixel, multiscale, tv_lp, fourier, maco,
deepdream, class_dream, inversion, style); ``scorers`` the non-linear objectives some of them
maximize; ``optim`` the normalized-gradient optimizer.  Importing the package registers them all.
"""

from . import baselines, prior  # noqa: F401  (register the methods)
from .registry import (
    METHODS,
    RENDER_KEYS,
    Setup,
    build_setup,
    options_node,
    register_method,
    render_options,
    transform_generator,
    with_steps,
)

__all__ = [
    "METHODS",
    "RENDER_KEYS",
    "Setup",
    "build_setup",
    "options_node",
    "register_method",
    "render_options",
    "transform_generator",
    "with_steps",
]
