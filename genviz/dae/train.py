"""Training the denoising autoencoder from a composed ``train_dae`` config.

:func:`train` builds the data module, the DAE, the callbacks, the loggers and the Trainer
from the config and fits; :func:`run` is the same for the command line (``train_dae.py``,
``genviz-train-dae``): a bad input is one line on stderr and exit code 2, a SIGINT/SIGTERM
(after ``last.ckpt`` is written) one line and exit code 128 + signal.  ``ckpt_path=last``
resumes from the newest readable checkpoint of the run directory
(:func:`find_resume_checkpoint`); ``init_from=PATH`` starts a new run from a checkpoint's
weights (:func:`warm_start`).
"""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path

import hydra
import pytorch_lightning as pl
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_info, rank_zero_only, rank_zero_warn
from pytorch_lightning.utilities.exceptions import SIGTERMException

from genviz.atomic import disk_error
from genviz.dae.callbacks import AtomicCheckpointIO, TrainingInterrupted
from genviz.dae.data import DataConfigError, DataRootError
from genviz.dae.module import NonFiniteError
from genviz.generator import CheckpointError, _read_checkpoint
from genviz.options import float_value, int_value

# what main() turns into a one-line error and exit code 2
USER_ERRORS = (DataRootError, DataConfigError, FileNotFoundError, CheckpointError, NonFiniteError)


def _instantiate(node: DictConfig, key: str, **kwargs):
    """hydra.utils.instantiate, with a config error raised by the target itself (a
    DataConfigError, or a ValueError/TypeError from a constructor such as the DAE's or the
    Trainer's, an unknown ``_target_``) as a one-line DataConfigError that names the config key
    (``trainer.max_stepz``: the unknown option) instead of Hydra's multi-line wrapped traceback."""
    try:
        return hydra.utils.instantiate(node, **kwargs)
    except InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, DataConfigError):
            raise cause from None
        if isinstance(cause, ValueError | TypeError):
            unknown = re.search(r"unexpected keyword argument '(\w+)'", str(cause))
            if unknown:
                raise DataConfigError(f"{key}.{unknown.group(1)}: unknown option ({cause})") from None
            raise DataConfigError(f"{key}: {str(cause).splitlines()[0]}") from None
        first = str(cause or e).strip().splitlines()
        raise DataConfigError(f"{key}: {first[0] if first else type(e).__name__}") from None


def _instantiate_all(group: DictConfig | None, key: str) -> list:
    if not group:
        return []
    return [_instantiate(c, f"{key}.{name}") for name, c in group.items() if c and "_target_" in c]


# the dae's numbers, checked before the model is built: (minimum, integer?)
DAE_NUMBERS = {
    "lr": (1e-12, False),
    "weight_decay": (0.0, False),
    "noise_std": (0.0, False),
    "hf_weight": (0.0, False),
    "min_lr_ratio": (0.0, False),
    "gamma": (1e-12, False),
    "mse_weight": (0.0, False),
    "code_stats_momentum": (0.0, False),
    "warmup_steps": (0, True),
    "step_size": (1, True),
    "image_size": (1, True),
    "adversarial.lr": (1e-12, False),
    "adversarial.weight": (0.0, False),
}


def check_dae_numbers(dae: DictConfig) -> None:
    """Every number of ``dae.*`` that has a range is in it (``dae.lr=-1``: one line naming the
    key, before the model, the data and the optimizer are built)."""
    for name, (minimum, integer) in DAE_NUMBERS.items():
        value = OmegaConf.select(dae, name)
        if value is None:
            continue
        key = f"dae.{name}"
        try:
            if integer:
                int_value(key, value, int(minimum))
            else:
                float_value(key, value, minimum, " (it must be positive)" if minimum > 0 else "")
        except ValueError as e:
            raise DataConfigError(str(e)) from None


def check_native(cfg: DictConfig) -> None:
    """``dae.lowres_size`` and ``dae.adversarial.reals=sharp`` act on the photos the data module
    marks sharp or not, which it does with ``data.native=true`` only: without it they would
    silently do nothing, so that is one line naming the fix."""
    if cfg.data.get("native"):
        return
    used = []
    if cfg.dae.get("lowres_size"):
        used.append(f"dae.lowres_size={cfg.dae.lowres_size}")
    if OmegaConf.select(cfg.dae, "adversarial.reals") == "sharp":
        used.append("dae.adversarial.reals=sharp")
    if used:
        raise DataConfigError(
            f"{' and '.join(used)} act only on data that marks each photo sharp or not, and this "
            "data config has native=false: add data.native=true (as data=even43k_128 has), or drop them"
        )


def read_training_checkpoint(path: str, key: str = "ckpt_path") -> dict:
    """A train_dae.py checkpoint read with ``weights_only=True``; a one-line CheckpointError
    for anything else (random bytes, a truncated file, a decoder-only or foreign file)."""
    ckpt = _read_checkpoint(path, "cpu")
    missing = [k for k in ("state_dict", "global_step", "loops", "optimizer_states") if k not in ckpt]
    if missing or not isinstance(ckpt["state_dict"], dict):
        raise CheckpointError(
            f"{key} {path}: not a train_dae.py training checkpoint (no {missing[0] if missing else 'state_dict'!r}); "
            "to start a new run from its weights use init_from=PATH"
        )
    return ckpt


def checkpoint_candidates(output_dir: str) -> list[Path]:
    """The run's checkpoints, newest first: ``checkpoints/*.ckpt`` (last, best) and the
    ``hpc_ckpt_*.ckpt`` that Lightning writes on SLURM's requeue signal (in the run dir)."""
    root = Path(output_dir)
    files = [
        *root.glob("checkpoints/*.ckpt"),
        *root.glob("hpc_ckpt_*.ckpt"),
        *root.glob("checkpoints/hpc_ckpt_*.ckpt"),
    ]
    stamped = []
    for p in files:
        try:  # another rank may be renaming a damaged one right now
            if p.is_file():
                stamped.append(((p.stat().st_mtime_ns, p.name.startswith("last")), p))
        except OSError:
            continue
    # newest first; at the same mtime last.ckpt (written after best-* in the same step)
    return [p for _, p in sorted(stamped, key=lambda t: t[0], reverse=True)]


def find_resume_checkpoint(ckpt_path: str | None, output_dir: str) -> tuple[str | None, dict | None]:
    """``ckpt_path`` -> (path to resume from, its contents), or (None, None) for a fresh start.

    ``last``: the newest readable of the run's checkpoints (``last.ckpt``, ``hpc_ckpt_*.ckpt``
    after a SLURM requeue signal, ``best-*.ckpt``).  A damaged newer one (a truncated file) is
    skipped with a warning and renamed to ``<name>.damaged``.  None at all: a fresh start; only
    damaged ones: a CheckpointError.  A path: it must be a readable train_dae.py checkpoint."""
    if not ckpt_path:
        return None, None
    if str(ckpt_path) == "last":
        candidates = checkpoint_candidates(output_dir)
        if not candidates:
            rank_zero_info(f"ckpt_path=last: no checkpoint in {output_dir} yet, starting from scratch")
            return None, None
        damaged = []
        for path in candidates:
            try:
                ckpt = read_training_checkpoint(str(path))
            except CheckpointError as e:
                damaged.append((path, str(e).replace(f"{path}: ", "").split(". ")[0][:200]))
                continue
            for bad, why in damaged:
                rank_zero_warn(f"ckpt_path=last: skipping {bad} ({why}); renamed to {bad.name}.damaged")
                if rank_zero_only.rank == 0:
                    try:
                        bad.replace(bad.with_name(bad.name + ".damaged"))
                    except OSError:
                        pass
            if damaged:
                rank_zero_warn(
                    f"ckpt_path=last: resuming from {path} (step {ckpt.get('global_step')}) instead "
                    f"of the damaged {damaged[0][0].name}"
                )
            else:
                rank_zero_info(f"ckpt_path=last: resuming from {path} (step {ckpt.get('global_step')})")
            return str(path), ckpt
        raise CheckpointError(
            f"ckpt_path=last: none of the {len(candidates)} checkpoints in {output_dir} is readable "
            f"({damaged[0][1]}); move them away to start afresh, or set name= for a new run"
        )
    path = hydra.utils.to_absolute_path(str(ckpt_path))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"ckpt_path {ckpt_path!r} is not a file")
    return path, read_training_checkpoint(path)


def resolve_ckpt_path(ckpt_path: str | None, output_dir: str) -> str | None:
    """The checkpoint path ``trainer.fit`` resumes from (see :func:`find_resume_checkpoint`)."""
    return find_resume_checkpoint(ckpt_path, output_dir)[0]


def _check_shapes(model: pl.LightningModule, state: dict, what: str) -> None:
    own = model.state_dict()
    wrong = [
        f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and hasattr(v, "shape") and v.shape != own[k].shape
    ]
    if wrong:
        raise CheckpointError(
            f"{what}: {len(wrong)} tensors have other shapes than this dae config's "
            f"({'; '.join(wrong[:3])}); use the dae config the checkpoint was trained with"
        )


def _flat(d, prefix: str = "") -> dict:
    out = {}
    for k, v in (d or {}).items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v.tolist() if hasattr(v, "tolist") else v
    return out


def check_resume_hparams(model: pl.LightningModule, ckpt: dict, path: str) -> None:
    """Resuming keeps the checkpoint's optimizer, learning-rate schedule and step: a ``dae.*``
    value that differs from the checkpoint's would be silently ignored by the optimizer while
    the new checkpoints' hyper-parameters claimed it.  So it is refused, one line naming the keys
    (a key the checkpoint lacks, from an older genviz, is not a difference)."""
    theirs = _flat(ckpt.get("hyper_parameters") if isinstance(ckpt.get("hyper_parameters"), dict) else {})
    ours = _flat(dict(model.hparams))
    changed = [
        k for k in ours if k in theirs and ours[k] != theirs[k] and not _same_number(ours[k], theirs[k])
    ]
    if changed:
        shown = ", ".join(f"dae.{k}={ours[k]} (checkpoint: {theirs[k]})" for k in changed[:4])
        more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
        raise CheckpointError(
            f"ckpt_path: resuming {path} keeps its optimizer and schedule, but the config changes "
            f"{shown}{more}; drop these overrides to resume, or start a new run from its weights "
            "with init_from=PATH and another name="
        )


def _same_number(a, b) -> bool:
    try:
        return not isinstance(a, bool) and not isinstance(b, bool) and float(a) == float(b)
    except (TypeError, ValueError):
        return False


def warm_start(model: pl.LightningModule, path: str) -> dict[str, list[str]]:
    """Copy the weights of a checkpoint into a freshly built model (a fine-tuning start:
    new optimizer, schedule and step count).  Parts the checkpoint lacks (e.g. a
    discriminator added for fine-tuning) keep their initialization; a tensor whose shape
    differs is an error.  Read with ``weights_only=True``."""
    ckpt = _read_checkpoint(path, "cpu")
    state = ckpt.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"init_from {path}: no 'state_dict' (not a train_dae.py checkpoint)")
    own = model.state_dict()
    _check_shapes(model, state, f"init_from {path}")
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
    ckpt_path, ckpt = find_resume_checkpoint(cfg.get("ckpt_path"), output_dir)

    check_dae_numbers(cfg.dae)
    check_native(cfg)
    datamodule: pl.LightningDataModule = _instantiate(cfg.data, "data")
    datamodule.setup("fit")  # fail early (and on every rank) on a bad data root
    model: pl.LightningModule = _instantiate(cfg.dae, "dae")
    if ckpt is not None:
        _check_shapes(model, ckpt["state_dict"], f"ckpt_path {ckpt_path}")  # its own message first
        check_resume_hparams(model, ckpt, ckpt_path)
        del ckpt
    if cfg.get("init_from") and ckpt_path is None:  # a resumed run already holds its weights
        warm_start(model, hydra.utils.to_absolute_path(str(cfg.init_from)))
    callbacks = _instantiate_all(cfg.get("callbacks"), "callbacks")
    loggers = _instantiate_all(cfg.get("logger"), "logger")
    if not loggers and any(isinstance(c, pl.callbacks.LearningRateMonitor) for c in callbacks):
        rank_zero_info("no logger: the learning-rate monitor is left out")
        callbacks = [c for c in callbacks if not isinstance(c, pl.callbacks.LearningRateMonitor)]
    # checkpoints written atomically in the run's own directory, never via TMPDIR
    trainer_kwargs = {} if cfg.trainer.get("plugins") else {"plugins": [AtomicCheckpointIO()]}
    if not model.automatic_optimization and cfg.trainer.get("gradient_clip_val"):
        # Lightning refuses gradient clipping in the Trainer with manual optimization
        model.grad_clip = float(cfg.trainer.gradient_clip_val)
        trainer_kwargs["gradient_clip_val"] = None
    trainer: pl.Trainer = _instantiate(
        cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False, **trainer_kwargs
    )

    _save_config(cfg, output_dir)
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    except SIGTERMException:  # SIGINT/SIGTERM: genviz.dae.callbacks.Checkpoint has saved last.ckpt
        signum = next((c.received_signal for c in callbacks if getattr(c, "received_signal", None)), None)
        signum = signum or signal.SIGTERM
        saved = [c.last_model_path for c in callbacks if isinstance(c, pl.callbacks.ModelCheckpoint)]
        where = f"{saved[0]} saved" if saved and saved[0] else "no checkpoint written"
        raise TrainingInterrupted(
            f"stopped by {signal.Signals(signum).name} at step {trainer.global_step}; {where}; "
            "resume with ckpt_path=last",
            signum,
        ) from None
    except SystemExit:  # Lightning's answer to a KeyboardInterrupt (the second Ctrl-C): exit 1
        if not any(getattr(c, "received_signal", None) for c in callbacks):
            raise
        raise KeyboardInterrupt from None
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


def run(cfg: DictConfig) -> float | None:
    """``train`` for the command line: a bad input is a one-line error and exit code 2, a
    SIGINT/SIGTERM (after last.ckpt is saved) a one-line note and exit code 128 + signal."""
    try:
        metrics = train(cfg)
    except USER_ERRORS as e:
        print(f"train_dae: error: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:  # a full disk (a checkpoint, a log): one line, the last good checkpoint kept
        if disk_error(e) is None:
            raise
        print(f"train_dae: error: {disk_error(e)} (ckpt_path=last resumes)", file=sys.stderr)
        sys.exit(2)
    except TrainingInterrupted as e:
        print(f"train_dae: {e}", file=sys.stderr)
        sys.exit(128 + e.signum)
    except KeyboardInterrupt:  # a second Ctrl-C: stopped at once, one line (not chained tracebacks)
        print(
            "train_dae: stopped at once by a second Ctrl-C; ckpt_path=last resumes from the last checkpoint",
            file=sys.stderr,
        )
        sys.exit(128 + signal.SIGINT)
    return metrics.get("val/loss")  # the value a Hydra sweeper would minimize
