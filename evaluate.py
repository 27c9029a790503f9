"""Score a visualize run with independent classifiers.

    python evaluate.py run_dir=outputs/2026-11-22/04-30-00
    python evaluate.py run_dir=... evaluators=[efficientnet_lite1] reference_dir=/data/imagenet-val-1k

Writes evaluation.csv and evaluation.md into the run directory (see genviz/evaluation.py).
"""

import logging

import hydra
from omegaconf import DictConfig, ListConfig, OmegaConf

from genviz.cli import friendly_errors
from genviz.evaluation import SUMMARY_COLUMNS, evaluate_run, markdown_table

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    with friendly_errors():
        evaluators = cfg.evaluators
        evaluators = list(evaluators) if isinstance(evaluators, ListConfig) else [evaluators]
        rows, summaries = evaluate_run(
            cfg.run_dir,
            evaluators=evaluators,
            reference_dir=cfg.reference_dir,
            reference_classes=OmegaConf.to_object(cfg.reference_classes) if cfg.reference_classes else None,
            batch_size=cfg.batch_size,
            cache_dir=cfg.cache_dir,
            use_cache=cfg.use_cache,
            nearest=cfg.nearest,
            realism_dir=(
                OmegaConf.to_object(cfg.realism_dir)
                if isinstance(cfg.realism_dir, ListConfig)
                else cfg.realism_dir
            ),
        )
    print(markdown_table(summaries, SUMMARY_COLUMNS))
    log.info("wrote %s/evaluation.csv and evaluation.md (%d rows)", cfg.run_dir, len(rows))


if __name__ == "__main__":
    main()
