"""Render an atlas: every class (or a range), the channels of a layer, or class pairs.

    python atlas.py classes=0:100 classifier=efficientnet_lite0
    python atlas.py -m shard=0,1,2,3 num_shards=4          # 4 jobs (hydra/launcher=submitit_slurm on SLURM)
    python atlas.py sheet=layer layer=blocks4 channels=0:64
    python atlas.py sheet=compound
    python atlas.py sheets_only=true                       # rebuild sheets after all shards finished

Resumable: targets whose image decodes and whose entry reads are skipped. See docs/atlas.md.
"""

import logging
import sys

import hydra
from omegaconf import DictConfig

from genviz.cli import friendly_errors

log = logging.getLogger("genviz")


@hydra.main(version_base="1.3", config_path="conf", config_name="atlas")
def main(cfg: DictConfig) -> None:
    from genviz.atlas import run_atlas

    with friendly_errors():
        counts = run_atlas(cfg)
    log.info(
        "atlas: %(rendered)d rendered, %(skipped)d already done, %(missing)d of %(total)d still missing",
        counts,
    )
    if counts.get("nan"):
        log.warning(
            "atlas: %d target(s) ended with a non-finite activation (status nan, not results): "
            "lower the learning rate",
            counts["nan"],
        )
    for p in counts["sheets"]:
        log.info("sheet: %s", p)


if __name__ == "__main__":
    sys.exit(main())
