"""python visualize.py target=class:mosque [classifier=efficientnet_lite0] [generator=dae ...]"""

import logging
import sys

import hydra
from omegaconf import DictConfig

from genviz.cli import friendly_errors

log = logging.getLogger("genviz")


@hydra.main(version_base="1.3", config_path="conf", config_name="visualize")
def main(cfg: DictConfig) -> None:
    from genviz.app import generate, save

    with friendly_errors():
        results = generate(cfg)
        out = save(results, cfg.out_dir, cfg)
    for r in results:
        extra = f"  p={r['prob']:.3f} rank={r['rank']}" if r["prob"] is not None else ""
        log.info("%-40s activation=%.3f%s  %s", r["target"], r["activation"], extra, r["status"])
    log.info("images, grid.png and results.json in %s", out)


if __name__ == "__main__":
    sys.exit(main())
