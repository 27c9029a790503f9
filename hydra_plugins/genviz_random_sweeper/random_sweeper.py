"""Random-search sweeper for Hydra multirun.

    python visualize.py -m hydra/sweeper=random hydra.sweeper.trials=20 \
        method=pixel_regularized 'method.lr=tag(log,interval(0.03,3))' \
        method.median_size=0,3,5 'method.blur_every=range(2,9)'

Each sweep parameter is drawn independently per trial: ``interval(a,b)`` uniformly,
``tag(log,interval(a,b))`` log-uniformly, a list / ``choice(...)`` / ``range(...)`` uniformly
among its values; plain overrides are passed to every trial.  The draws come from
``hydra.sweeper.seed``, so a sweep is reproducible.  The trials and their draws are written
to ``<sweep dir>/trials.tsv``; ``python -m genviz.sweep <sweep dir>`` ranks the finished runs.
"""

import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override
from hydra.errors import HydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


@dataclass
class RandomSweeperConf:
    _target_: str = "hydra_plugins.genviz_random_sweeper.random_sweeper.RandomSweeper"
    trials: int = 20
    seed: int = 0
    max_batch_size: Optional[int] = None  # trials handed to the launcher at once (None: all)
    params: Optional[Dict[str, str]] = None  # search space in the config instead of the command line


ConfigStore.instance().store(group="hydra/sweeper", name="random", node=RandomSweeperConf, provider="genviz")


def _format(v: float) -> str:
    return f"{v:.4g}"


def sampler(override: Override):
    """A function ``rng -> value string`` for one override (a constant for a plain value)."""
    key = override.get_key_element()
    if not override.is_sweep_override():
        value = override.get_value_element_as_str()
        return key, lambda rng: value
    if override.is_discrete_sweep():
        values = list(override.sweep_string_iterator())
        if not values:
            raise HydraException(f"random sweeper: {key} has an empty list of values")
        return key, lambda rng: rng.choice(values)
    sweep = override.value()
    assert isinstance(sweep, IntervalSweep)
    lo, hi = float(sweep.start), float(sweep.end)
    if not lo < hi:
        raise HydraException(f"random sweeper: {key}=interval({lo},{hi}) needs start < end")
    if "log" in sweep.tags:
        if lo <= 0:
            raise HydraException(f"random sweeper: {key}: a log interval needs start > 0, got {lo}")
        a, b = math.log(lo), math.log(hi)
        return key, lambda rng: _format(math.exp(rng.uniform(a, b)))
    return key, lambda rng: _format(rng.uniform(lo, hi))


def draw_trials(overrides: list[Override], trials: int, seed: int) -> list[list[str]]:
    """``trials`` lists of ``key=value`` overrides, one value drawn per sweep parameter."""
    if trials < 1:
        raise HydraException(f"random sweeper: trials must be >= 1, got {trials}")
    samplers = [sampler(o) for o in overrides]
    rng = random.Random(seed)
    return [[f"{k}={draw(rng)}" for k, draw in samplers] for _ in range(trials)]


class RandomSweeper(Sweeper):
    def __init__(
        self, trials: int, seed: int, max_batch_size: int | None = None, params: dict | None = None
    ) -> None:
        super().__init__()
        self.trials, self.seed = int(trials), int(seed)
        self.max_batch_size = max_batch_size
        self.params = dict(params or {})
        self.config: DictConfig | None = None
        self.launcher = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([f"{k}={v}" for k, v in self.params.items()] + list(arguments))
        jobs = draw_trials(overrides, self.trials, self.seed)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        swept = [o.get_key_element() for o in overrides if o.is_sweep_override()]
        lines = ["trial\t" + "\t".join(swept)]
        for i, job in enumerate(jobs):
            vals = dict(s.split("=", 1) for s in job)
            lines.append(f"{i}\t" + "\t".join(vals[k] for k in swept))
        (sweep_dir / "trials.tsv").write_text("\n".join(lines) + "\n")
        log.info("random sweeper: %d trials over %s (seed %d)", len(jobs), ", ".join(swept) or "-", self.seed)
        size = self.max_batch_size or len(jobs)
        returns = []
        for start in range(0, len(jobs), size):
            batch = jobs[start : start + size]
            self.validate_batch_is_legal(batch)
            results = self.launcher.launch(batch, initial_job_idx=start)
            for r in results:
                _ = r.return_value  # re-raises a failed job's exception
            returns.append(results)
        return returns
