"""The Hydra callback that checks, before Hydra creates the run directory, that it can."""

from __future__ import annotations

import os
import sys

from omegaconf import OmegaConf

from ..atomic import unwritable_reason

try:
    from hydra.experimental.callback import Callback as _HydraCallback
except ImportError:  # pragma: no cover - hydra < 1.1
    _HydraCallback = object


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:  # different drives
        return False


class CheckOutDir(_HydraCallback):
    """Hydra callback (``hydra.callbacks`` in conf/atlas.yaml, conf/audit.yaml): before Hydra
    creates the run directory (inside ``out_dir``), check that it can; else ``error: ...`` and
    exit code 2 rather than Hydra's traceback."""

    def _check(self, config, dir_key: str) -> None:
        try:
            run_dir, out_dir = self._resolve(config, dir_key)
        except Exception:  # whatever fails here fails again where Hydra reads it, with its message
            return
        if run_dir is None:
            return
        reason = unwritable_reason(run_dir)
        if reason is None:
            return
        key, value = dir_key, run_dir
        if out_dir is not None and _inside(str(run_dir), str(out_dir)):
            key, value = "out_dir", out_dir
        print(
            f"error: {key}={value}: cannot write there ({reason}); choose a writable directory",
            file=sys.stderr,
        )
        raise SystemExit(2)

    @staticmethod
    def _resolve(config, dir_key: str):
        """(run or sweep dir, out_dir), resolved as Hydra will: ``${hydra:...}`` needs the
        HydraConfig singleton, set here for the lookup and put back as it was."""
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.instance()
        prev_cfg, prev_ro = hc.cfg, config.hydra._get_node_flag("readonly")
        try:
            hc.set_config(config)
            return OmegaConf.select(config, dir_key), OmegaConf.select(config, "out_dir", default=None)
        finally:
            hc.cfg = prev_cfg
            OmegaConf.set_readonly(config.hydra, prev_ro)

    def on_run_start(self, config, **kwargs) -> None:
        self._check(config, "hydra.run.dir")

    def on_multirun_start(self, config, **kwargs) -> None:
        self._check(config, "hydra.sweep.dir")
