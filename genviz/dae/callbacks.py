"""Training callbacks, checkpoint I/O and logger helpers for ``train_dae.py``."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.plugins import TorchCheckpointIO
from pytorch_lightning.utilities import rank_zero_info, rank_zero_only
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torchvision.utils import make_grid, save_image

from genviz.atomic import open_atomic
from genviz.dae.module import NonFiniteError


class TrainingInterrupted(Exception):
    """SIGINT/SIGTERM stopped training after the checkpoint was written; ``signum`` says which."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = int(signum)


def nonfinite_tensors(state: dict) -> list[str]:
    """Names of the floating-point tensors of a state dict that hold a NaN or an inf."""
    return [
        k
        for k, v in state.items()
        if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())
    ]


def _refuse_nonfinite(state: dict, what: str, step: int | None = None) -> None:
    bad = nonfinite_tensors(state)
    if bad:
        at = f" at step {step}" if step is not None else ""
        raise NonFiniteError(
            f"{len(bad)} of {len(state)} weight tensors are NaN/inf{at} (e.g. {bad[0]}): {what} not "
            "written, the checkpoints on disk are left as they were (lower dae.lr or raise dae.warmup_steps)"
        )


def atomic_torch_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save`` that never leaves a partial file at ``path``: a temporary file beside it
    (same directory, so the same filesystem; ``TMPDIR`` is never used), fsynced, then
    ``os.replace``-d onto ``path`` (:mod:`genviz.atomic`).  A kill at any moment leaves the old
    file or the new one (and perhaps a stray ``.<name>.*.tmp``), never a truncated checkpoint."""
    with open_atomic(path, "wb") as f:
        torch.save(obj, f)
    return Path(path)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O for local paths: :func:`atomic_torch_save`, and a checkpoint
    whose weights are NaN/inf is refused (:class:`NonFiniteError`).  Lightning's own writer
    stages the file in ``TMPDIR`` and, on another filesystem, copies it into place, so a kill
    during the copy truncates ``last.ckpt``.  Remote URLs (``s3://``...) keep Lightning's writer."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        _refuse_nonfinite(checkpoint.get("state_dict", {}), str(path), checkpoint.get("global_step"))
        atomic_torch_save(checkpoint, path)


class Checkpoint(ModelCheckpoint):
    """ModelCheckpoint whose ``last.ckpt`` really is the last state, next to ``best-*.ckpt``.

    - Lightning 2.x writes ``last.ckpt`` only in a step where a top-k checkpoint was saved, so
      with ``monitor`` set it lags behind whenever validation does not improve, and it is not
      written when ``max_steps``/``max_time`` stop mid-epoch.  Here it is also written after every
      epoch (and every validation that does not fall at an epoch's end) and at the end of
      training.  At an epoch's end the top-k check runs first, so ``best-*.ckpt`` is written too.
    - SIGINT (Ctrl-C) and SIGTERM: training stops at the end of the current step, ``last.ckpt``
      is written and ``trainer.fit`` raises ``SIGTERMException``, which ``genviz.dae.train.train`` turns
      into :class:`TrainingInterrupted`.  A second Ctrl-C stops at once, without saving.
    - Nothing is written from NaN/inf weights: :class:`NonFiniteError` instead.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.received_signal: int | None = None
        self._previous_handlers: dict[int, object] = {}

    # ------------------------------------------------------------ last.ckpt
    def _save_last_if_stale(self, trainer) -> None:
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_checkpoint(self, trainer, filepath: str) -> None:
        # every rank checks (the weights are the same everywhere), so all stop together
        _refuse_nonfinite(trainer.lightning_module.state_dict(), filepath, trainer.global_step)
        super()._save_checkpoint(trainer, filepath)

    def on_validation_end(self, trainer, pl_module):
        super().on_validation_end(trainer, pl_module)
        # a validation at an epoch's end is followed by on_train_epoch_end, where the top-k
        # checkpoint is saved; writing last.ckpt here first would mark the step as saved and
        # skip it (no best-*.ckpt at all with the default configs)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_stale(trainer)

    def on_train_epoch_end(self, trainer, pl_module):
        super().on_train_epoch_end(trainer, pl_module)
        self._save_last_if_stale(trainer)

    def on_train_end(self, trainer, pl_module):
        super().on_train_end(trainer, pl_module)
        self._save_last_if_stale(trainer)
        self._restore_signal_handlers()

    # -------------------------------------------------------------- signals
    def on_train_start(self, trainer, pl_module):
        super().on_train_start(trainer, pl_module)
        if trainer.ckpt_path:  # resumed: this step is on disk already, do not write it again
            self._last_global_step_saved = trainer.global_step
            # a run directory copied or moved since: Lightning does not restore last_model_path
            # from a checkpoint of another dirpath, and would write last-v1.ckpt beside last.ckpt
            last = os.path.join(str(self.dirpath), self.CHECKPOINT_NAME_LAST + self.FILE_EXTENSION)
            if not self.last_model_path and self.save_last and os.path.isfile(last):
                self.last_model_path = last
        self.received_signal = None
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(signum)
            self._previous_handlers[signum] = previous

            def handler(sig, frame, previous=previous):
                self._on_signal(trainer, sig, frame, previous)

            signal.signal(signum, handler)

    def _on_signal(self, trainer, signum, frame, previous) -> None:
        if self.received_signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: stop now, without saving
        first = self.received_signal is None
        if first:
            self.received_signal = int(signum)
            rank_zero_info(
                f"{signal.Signals(signum).name}: stopping after this step and saving last.ckpt "
                "(Ctrl-C again stops at once, without saving)"
            )
        if signum == signal.SIGTERM and callable(previous):
            previous(signum, frame)  # Lightning's: flags the loops, forwards to spawned ranks
        connector = getattr(trainer, "_signal_connector", None)
        if connector is not None:
            connector.received_sigterm = True  # the loops raise SIGTERMException after the step

    def _restore_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in self._previous_handlers.items():
            with contextlib.suppress(TypeError, ValueError):
                signal.signal(signum, previous)
        self._previous_handlers = {}

    def on_exception(self, trainer, pl_module, exception):
        try:
            if isinstance(exception, SIGTERMException) and not trainer.sanity_checking:
                self._save_last_if_stale(trainer)
            elif not isinstance(exception, NonFiniteError):
                super().on_exception(trainer, pl_module, exception)
        finally:
            self._restore_signal_handlers()

    def teardown(self, trainer, pl_module, stage):
        super().teardown(trainer, pl_module, stage)
        self._restore_signal_handlers()


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
            items = [ds[i] for i in range(n)]
            self._batch = torch.stack([x[0] if isinstance(x, tuple) else x for x in items])
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
