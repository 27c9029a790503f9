"""python visualize.py target=class:mosque [classifier=efficientnet_lite0] [generator=dae ...]"""

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from genviz.cli import (
    check_run_dir_override,
    friendly_errors,
)  # also registers ${genviz.unique_dir:...} (the run directory)

log = logging.getLogger("genviz")


def _run_dir() -> str | None:
    try:
        return HydraConfig.get().runtime.output_dir
    except ValueError:
        return None


@hydra.main(version_base="1.3", config_path="conf", config_name="visualize")
def main(cfg: DictConfig) -> None:
    from genviz.app import check_method_options, run_and_save, validate_config
    from genviz.rundir import claim_output
    from genviz.tracking import build_loggers, log_run

    with friendly_errors(cleanup_dir=_run_dir()):
        validate_config(cfg)  # every config value and target string, before any work
        check_method_options(cfg, list(HydraConfig.get().overrides.task))
        with claim_output(cfg.out_dir, overwrite=bool(cfg.get("overwrite", False))) as out_dir:
            loggers = build_loggers(cfg, out_dir)  # a missing tracker package fails before the work
            results, out = run_and_save(cfg, out_dir)  # each batch saved as it finishes
            log_run(loggers, results, cfg, out)
    for r in results:
        extra = f"  p={r['prob']:.3f} rank={r['rank']}" if r["prob"] is not None else ""
        note = " (minimizing)" if r.get("minimizing") else ""
        log.info("%-40s activation=%.3f%s  %s%s", r["target"], r["activation"], extra, r["status"], note)
    log.info("images, grid.png and results.json in %s", out)


if __name__ == "__main__":
    check_run_dir_override(sys.argv[1:], default="outputs/visualize")
    sys.exit(main())
