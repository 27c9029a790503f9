"""Training callbacks and logger helpers for ``train_dae.py``."""

from __future__ import annotations

import os
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_only
from torchvision.utils import make_grid, save_image


class Checkpoint(ModelCheckpoint):
    """ModelCheckpoint whose ``last.ckpt`` really is the last state.

    Lightning 2.x writes ``last.ckpt`` only in a step where a top-k checkpoint was saved, so
    with ``monitor`` set it lags behind whenever validation does not improve, and it is not
    written when ``max_steps``/``max_time`` stop mid-epoch.  Here it is also written after
    every validation / epoch and at the end of training, so ``ckpt_path=last`` loses nothing."""

    def _save_last_if_stale(self, trainer) -> None:
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_validation_end(self, trainer, pl_module):
        super().on_validation_end(trainer, pl_module)
        self._save_last_if_stale(trainer)

    def on_train_epoch_end(self, trainer, pl_module):
        super().on_train_epoch_end(trainer, pl_module)
        self._save_last_if_stale(trainer)

    def on_train_end(self, trainer, pl_module):
        super().on_train_end(trainer, pl_module)
        self._save_last_if_stale(trainer)


class ReconstructionGrid(pl.Callback):
    """Every ``every_n_steps`` training steps (and at the end), write a PNG grid of
    noisy / clean / reconstructed validation images (rows) to ``dirpath`` and to the
    logger when it takes images (TensorBoard, W&B).  The images and the noise are
    fixed for the whole run, so grids are comparable across steps."""

    def __init__(self, dirpath: str, every_n_steps: int = 500, n_images: int = 8, seed: int = 0):
        self.dirpath, self.every_n_steps = Path(dirpath), int(every_n_steps)
        self.n_images, self.seed = int(n_images), int(seed)
        self._batch: torch.Tensor | None = None
        self.last_path: Path | None = None

    def _images(self, trainer) -> torch.Tensor:
        if self._batch is None:
            dm = trainer.datamodule
            ds = dm.val_set if dm is not None and getattr(dm, "val_set", None) else None
            if ds is None:
                ds = trainer.val_dataloaders.dataset
            n = min(self.n_images, len(ds))
            self._batch = torch.stack([ds[i] for i in range(n)])
        return self._batch

    @rank_zero_only
    def write(self, trainer: pl.Trainer, module) -> Path:
        clean = self._images(trainer).to(module.device)
        was = module.training
        module.eval()
        with torch.no_grad():
            gen = torch.Generator(device=clean.device).manual_seed(self.seed)
            noisy, recon = module.reconstruct(clean, gen)
        module.train(was)
        rows = torch.cat([noisy, clean, recon]).clamp(0, 1).cpu()
        grid = make_grid(rows, nrow=len(clean), padding=2, pad_value=1.0)
        self.dirpath.mkdir(parents=True, exist_ok=True)
        step = trainer.global_step
        path = self.dirpath / f"recon_step{step:07d}.png"
        save_image(grid, path)
        self.last_path = path
        for logger in trainer.loggers:
            exp = getattr(logger, "experiment", None)
            if hasattr(exp, "add_image"):  # TensorBoard
                exp.add_image("recon/noisy_clean_recon", grid, step)
            elif hasattr(logger, "log_image"):  # W&B
                logger.log_image("recon/noisy_clean_recon", images=[grid], step=step)
        return path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if self.every_n_steps > 0 and step > 0 and step % self.every_n_steps == 0:
            self.write(trainer, pl_module)

    def on_train_end(self, trainer, pl_module):
        self.write(trainer, pl_module)


def wandb_logger(offline: str | bool = "auto", **kwargs):
    """WandbLogger that goes offline by itself when there is no API key (or WANDB_MODE=offline)."""
    from pytorch_lightning.loggers import WandbLogger

    if offline == "auto":
        offline = os.environ.get("WANDB_MODE") in ("offline", "dryrun") or not os.environ.get("WANDB_API_KEY")
    if kwargs.get("save_dir"):
        Path(kwargs["save_dir"]).mkdir(parents=True, exist_ok=True)
    return WandbLogger(offline=bool(offline), **kwargs)
