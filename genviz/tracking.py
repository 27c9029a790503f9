"""Experiment trackers for visualize runs: the same ``logger=`` group as ``train_dae.py``
(``csv``, ``tensorboard``, ``wandb``, ``none``; conf/logger/).

Per target: its activation per step (a curve), its final image, the optimization as a GIF when
frames were kept, and the run's config.  A multirun sweep lands in one place, so that trials
compare side by side: one TensorBoard directory under the sweep directory (a version per job)
and one wandb group named after the sweep.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from .runs import result_label, result_name


def _sweep() -> tuple[str, str] | None:
    """(sweep directory, job number) inside a Hydra multirun, else None."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
    except (ImportError, ValueError):  # no Hydra run (the Python API, tests)
        return None
    if hc.mode != RunMode.MULTIRUN:
        return None
    return str(hc.sweep.dir), str(hc.job.num)


def build_loggers(cfg: DictConfig, out_dir: str | Path) -> list:
    """Instantiate the configured ``logger`` group for a visualize run writing to ``out_dir``."""
    import hydra

    group = cfg.get("logger")
    if not group:
        return []
    group = group.copy()
    sweep = _sweep()
    loggers = []
    for node in group.values():
        if not node or "_target_" not in node:
            continue
        with open_dict(node):
            if "save_dir" in node:
                node.save_dir = str(Path(sweep[0]) if sweep else Path(out_dir))
            if "TensorBoardLogger" in str(node._target_) or "CSVLogger" in str(node._target_):
                node.version = f"job_{sweep[1]}" if sweep else ""
            if "wandb" in str(node._target_):
                node.name = f"{Path(sweep[0]).name}-{sweep[1]}" if sweep else Path(out_dir).name
                if sweep:
                    node.group = Path(sweep[0]).name
        try:
            loggers.append(hydra.utils.instantiate(node))
        except Exception as e:  # a missing package (tensorboard, wandb) or a bad logger option
            cause = e.__cause__ or e
            raise ValueError(
                f"logger: cannot start {node._target_} ({type(cause).__name__}: {str(cause).splitlines()[0][:200]}); "
                "pip install tensorboard (logger=tensorboard), or choose logger=csv / logger=none"
            ) from None
    return loggers


def log_run(loggers: list, results: list[dict], cfg: DictConfig | None, out_dir: str | Path) -> None:
    """Send a finished run's curves, images, GIFs and config to each logger."""
    if not loggers:
        return
    from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger, WandbLogger

    from .images import to_pil
    from .report import curve

    out = Path(out_dir)
    config: dict = {}
    if cfg is not None:
        try:
            config = OmegaConf.to_container(cfg, resolve=True)
        except Exception:  # an interpolation that needs the Hydra runtime
            config = OmegaConf.to_container(cfg, resolve=False)
    keys = [result_name(k, r["target"]) for k, r in enumerate(results)]  # unique: save()'s file names
    curves = {key: curve(r) for key, r in zip(keys, results, strict=True)}
    longest = max((len(c) for c in curves.values()), default=0)
    for lg in loggers:
        if isinstance(lg, WandbLogger):
            import wandb

            run = lg.experiment
            run.config.update(config, allow_val_change=True)
            for step in range(longest):
                run.log({f"activation/{k}": c[step] for k, c in curves.items() if step < len(c)}, step=step)
            media = {}
            for k, r in zip(keys, results, strict=True):
                media[f"image/{k}"] = wandb.Image(to_pil(r["tensor"]), caption=result_label(r))
                if r.get("gif"):
                    media[f"optimization/{k}"] = wandb.Video(str(out / r["gif"]), format="gif")
            run.log(media, step=max(longest - 1, 0))
            run.summary.update(
                {
                    f"final/{k}/{m}": r[m]
                    for k, r in zip(keys, results, strict=True)
                    for m in ("activation", "prob")
                    if r.get(m) is not None
                }
            )
            lg.finalize("success")
            run.finish()  # Lightning's finalize() does not: the next job of a sweep would reuse this run
            continue
        elif isinstance(lg, TensorBoardLogger):
            w = lg.experiment
            for k, c in curves.items():
                for step, v in enumerate(c):
                    w.add_scalar(f"activation/{k}", v, step)
            for k, r in zip(keys, results, strict=True):
                w.add_image(f"image/{k}", r["tensor"].clamp(0, 1), max(longest - 1, 0))
            w.add_text("config", "```\n" + OmegaConf.to_yaml(config) + "\n```")
            w.flush()
        elif isinstance(lg, CSVLogger):
            for step in range(longest):
                lg.log_metrics(
                    {f"activation/{k}": c[step] for k, c in curves.items() if step < len(c)}, step=step
                )
            lg.log_hyperparams(config)
        else:
            lg.log_hyperparams(config)
        lg.finalize("success")
