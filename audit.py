"""Audit classes (paper §5.1): generated images beside real ones, what else they activate.

    python audit.py classes=[crib,cradle,miniskirt,muzzle,harmonica,tench]
    python audit.py checkpoint=runs/dae_cpu_small/checkpoints/last.ckpt steps=200

Writes audit.html (self-contained), audit.png and audit.json into out_dir.
"""

import logging
import sys

import hydra
from omegaconf import DictConfig

from genviz.cli import friendly_errors

log = logging.getLogger("genviz")


@hydra.main(version_base="1.3", config_path="conf", config_name="audit")
def main(cfg: DictConfig) -> None:
    from genviz.audit import run_audit

    with friendly_errors():
        out = run_audit(cfg)
    for r in out["report"]:
        for g, s in r["generated"].items():
            others = ", ".join(f"{o['name']} {o['prob']:.2f}" for o in s["others"][:3])
            near = ", ".join(n["name"] for n in s["nearest"][:3])
            log.info(
                "%-12s %-9s p=%.3f rank %-4d others: %s | nearest: %s",
                r["name"],
                g,
                s["prob"],
                s["rank"],
                others,
                near,
            )
    if out["note"]:
        log.info(out["note"])
    log.info("report: %s  figure: %s", out["html"], out["figure"])


if __name__ == "__main__":
    sys.exit(main())
