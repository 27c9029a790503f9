"""Train the denoising autoencoder whose decoder is genviz's generator prior.

    python train_dae.py                                        # paper config, ImageNet dogs
    python train_dae.py dae=cpu_small data=val1k trainer=cpu   # quick local run
    python train_dae.py dae=cpu_small data=val1k ckpt_path=last  # resume that run
    python train_dae.py -m dae.loss=paper,mse+fft              # a sweep
    python train_dae.py dae=trunk_lite0 dae.adversarial.weight=0.05 init_from=PATH  # fine-tune

The run directory is ``runs/<name>`` (``name`` defaults to ``<dae>-<data>``); it holds
``checkpoints/last.ckpt`` and ``best-*.ckpt``, ``samples/recon_step*.png`` and the
logs.  ``genviz.generator.decoder_from_checkpoint`` loads the decoder of a checkpoint.
See docs/training.md for multi-GPU and SLURM.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_info, rank_zero_only

from genviz.data import DataRootError
from genviz.generator import CheckpointError


def _instantiate_all(group: DictConfig | None) -> list:
    if not group:
        return []
    return [hydra.utils.instantiate(c) for c in group.values() if c and "_target_" in c]


def resolve_ckpt_path(ckpt_path: str | None, output_dir: str) -> str | None:
    if not ckpt_path:
        return None
    if ckpt_path == "last":
        last = Path(output_dir) / "checkpoints" / "last.ckpt"
        if last.is_file():
            return str(last)
        rank_zero_info(f"ckpt_path=last: no {last} yet, starting from scratch")
        return None
    path = hydra.utils.to_absolute_path(ckpt_path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"ckpt_path {ckpt_path!r} is not a file")
    return path


def warm_start(model: pl.LightningModule, path: str) -> dict[str, list[str]]:
    """Copy the weights of a checkpoint into a freshly built model (a fine-tuning start:
    new optimizer, schedule and step count).  Parts the checkpoint lacks (e.g. a
    discriminator added for fine-tuning) keep their initialization; a tensor whose shape
    differs is an error.  Read with ``weights_only=True``."""
    from genviz.generator import _read_checkpoint

    ckpt = _read_checkpoint(path, "cpu")
    state = ckpt.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"init_from {path}: no 'state_dict' (not a train_dae.py checkpoint)")
    own = model.state_dict()
    wrong = [
        f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and v.shape != own[k].shape
    ]
    if wrong:
        raise CheckpointError(
            f"init_from {path}: {len(wrong)} tensors have other shapes than this dae config's "
            f"({'; '.join(wrong[:3])}); use the dae config the checkpoint was trained with"
        )
    result = model.load_state_dict(state, strict=False)
    report = {"missing": list(result.missing_keys), "unexpected": list(result.unexpected_keys)}
    if not set(own) - set(report["missing"]):
        raise CheckpointError(f"init_from {path}: none of its tensors belong to this model")
    rank_zero_info(
        f"init_from {path}: {len(own) - len(report['missing'])} tensors loaded, "
        f"{len(report['missing'])} kept their initialization, {len(report['unexpected'])} ignored"
    )
    return report


def train(cfg: DictConfig) -> dict:
    """Build everything from the config and fit.  Returns the final metrics."""
    pl.seed_everything(cfg.seed, workers=True)
    output_dir = str(cfg.paths.output_dir)
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), output_dir)

    datamodule: pl.LightningDataModule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")  # fail early (and on every rank) on a bad data root
    model: pl.LightningModule = hydra.utils.instantiate(cfg.dae)
    if cfg.get("init_from") and ckpt_path is None:  # a resumed run already holds its weights
        warm_start(model, hydra.utils.to_absolute_path(str(cfg.init_from)))
    callbacks = _instantiate_all(cfg.get("callbacks"))
    loggers = _instantiate_all(cfg.get("logger"))
    trainer_kwargs = {}
    if not model.automatic_optimization and cfg.trainer.get("gradient_clip_val"):
        # Lightning refuses gradient clipping in the Trainer with manual optimization
        model.grad_clip = float(cfg.trainer.gradient_clip_val)
        trainer_kwargs["gradient_clip_val"] = None
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, **trainer_kwargs
    )

    _save_config(cfg, output_dir)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    rank_zero_info(f"run dir: {output_dir}")
    for cb in callbacks:
        if isinstance(cb, pl.callbacks.ModelCheckpoint):
            rank_zero_info(f"checkpoints: last={cb.last_model_path} best={cb.best_model_path}")
    return metrics


@rank_zero_only
def _save_config(cfg: DictConfig, output_dir: str) -> None:
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, Path(output_dir) / "config.yaml", resolve=True)


@hydra.main(version_base="1.3", config_path="conf", config_name="train_dae")
def main(cfg: DictConfig) -> float | None:
    try:
        metrics = train(cfg)
    except (DataRootError, FileNotFoundError, CheckpointError) as e:
        print(f"train_dae: error: {e}", file=sys.stderr)
        sys.exit(2)
    return metrics.get("val/loss")  # the value a Hydra sweeper would minimize


if __name__ == "__main__":
    main()
