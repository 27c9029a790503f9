"""The optimization loop, batched over targets, and nothing else.

One step: image_fn() -> transforms -> classifier (hooks record the needed
layers) -> BatchObjective score -> loss = sum_i(-score_i + R_i) -> backward ->
optimizer step -> image ops (blur, clipping ... of pixel methods).  The loop
keeps its history on the device and reads it back only every
``check_every`` steps (progress bar, plateau and dead-start checks).
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from .classifiers import Activation, Classifier
from .objectives import Scorer
from .options import int_value
from .params import Param
from .runs import status_of

log = logging.getLogger(__name__)


def minimizing(objective) -> list[bool]:
    """Rows whose target has only negative weights (``-1*class:1``): they minimize, and an
    activation <= 0 is their aim, not a dead start."""
    objs = getattr(objective, "objectives", None)
    if objs is None:
        return [False] * len(objective)
    return [bool(getattr(o, "terms", None)) and all(t.weight < 0 for t in o.terms) for o in objs]


@dataclass
class RenderResult:
    images: torch.Tensor  # [B, 3, H, W] in [0, 1]
    activation: torch.Tensor  # [B] target activation at the last step of each row
    history: torch.Tensor  # [steps_run, B] target activation per step
    steps: list[int]  # steps each row ran (early stopping)
    dead: list[bool]  # rows whose target never became active
    dead_start: list[bool]  # rows whose target was 0 at the start (revived through the pre-activation)
    seconds: float
    frames: list[torch.Tensor]
    nonfinite: list[bool] = field(default_factory=list)  # rows whose activation or image is nan/inf
    minimizing: list[bool] = field(default_factory=list)  # rows with only negative weights
    # each row's chosen start in words (Param.start_label)
    starts: list[str | None] = field(default_factory=list)

    def grid(self, labels: list[str] | None = None):
        """A labelled contact sheet (PIL image): row k's final activation and status."""
        from .images import grid

        if labels is None:
            labels = [
                f"{k}: {float(a):.3g} {status_of(float(a), d, n)}"
                for k, (a, d, n) in enumerate(
                    zip(self.activation, self.dead, self.nonfinite or [False] * len(self.dead), strict=True)
                )
            ]
        return grid(self.images, labels)

    def _repr_png_(self) -> bytes:
        """Jupyter shows a result as its grid."""
        import io

        buf = io.BytesIO()
        self.grid().save(buf, format="PNG")
        return buf.getvalue()


class _Selector:
    """Final image of each row: the last one, or the median of the last snapshots."""

    def __init__(self, final: str, every: int, keep: int):
        if final not in ("last", "median"):
            raise ValueError(f"final must be 'last' or 'median', got {final!r}")
        self.final, self.every = final, max(1, int(every))
        self.snaps: deque[torch.Tensor] = deque(maxlen=max(1, int(keep)))

    def observe(self, step: int, img: torch.Tensor) -> None:
        if self.final == "median" and (step + 1) % self.every == 0:
            self.snaps.append(img.detach().clone())

    def select(self, img: torch.Tensor) -> torch.Tensor:
        if self.final == "median" and self.snaps:
            return torch.stack(list(self.snaps)).median(0).values
        return img.detach().clone()


CHOICE_BATCH = 32  # starts scored per forward pass (more when the batch has more rows)


def _choose_start(
    param: Param, objective: Scorer, classifier: Classifier, store, k: int, clamp: bool
) -> list[int]:
    """Set each row's code to the best of ``k`` starts by ``objective``'s total (clean image);
    returns the start each row took.

    Start j is the same for every row (``param.redraw``), so one forward pass scores many of them
    for every row at once: ``param.decode`` makes the images of up to max(B, CHOICE_BATCH) starts
    (their clean code), and each row's objective reads start i's recorded activations broadcast
    to the batch."""
    B = len(objective)
    if (
        param.redraw is None
        or param.decode is None
        or len(param.params) != 1
        or param.params[0].shape[0] != B
    ):
        raise ValueError(
            "init_candidates > 1 needs a parameterization that can draw other starts row by row: "
            "the pretrained generator prior with generator.param.alpha.init=sample or bank; set "
            "init_candidates=1 for this one"
        )
    code = param.params[0]  # the one tensor the starts set (decode's input)
    with torch.no_grad():
        starts = []  # start j: one row of the code
        for j in range(k):
            param.redraw(j)
            starts.append(code[0].detach().clone())
        starts = torch.stack(starts)
        best = torch.full((B,), -math.inf, device=code.device)
        choice = torch.zeros(B, dtype=torch.long, device=best.device)
        per_pass = max(B, CHOICE_BATCH)
        for c0 in range(0, k, per_pass):
            chunk = starts[c0 : c0 + per_pass]
            img = param.decode(chunk)
            classifier.run(classifier.fit_input(img.clamp(0, 1) if clamp else img), store)
            recorded = dict(store)
            for i in range(len(chunk)):
                store.clear()
                store.update(
                    {
                        name: Activation(
                            a.pre[i : i + 1].expand(B, *a.pre.shape[1:]),
                            a.post[i : i + 1].expand(B, *a.post.shape[1:]),
                        )
                        for name, a in recorded.items()
                    }
                )
                total = objective.score(store)[0].float()
                better = total > best
                choice[better] = c0 + i
                best = torch.where(better, total, best)
        param.redraw(0)  # rewinds the parameterization's own random streams (code noise)
        code.copy_(starts[choice])
    return choice.tolist()


def render(
    param: Param,
    objective: Scorer,
    classifier: Classifier,
    optimizer: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    steps: int = 500,
    transforms: Sequence[Callable[[torch.Tensor], torch.Tensor]] = (),
    image_ops: Sequence[Callable[[int, Param], None]] = (),
    clamp: bool = True,
    final: str = "last",
    snapshot_every: int = 50,
    median_of: int = 10,
    patience: int = 0,
    min_delta: float = 1e-3,
    check_every: int = 10,
    frames_every: int = 0,
    init_candidates: int = 1,
    progress: bool = True,
    desc: str = "",
) -> RenderResult:
    """Maximize ``objective`` row by row; returns the selected images in [0, 1].

    ``init_candidates`` > 1: before the first step, draw that many starts (``param.redraw``) and
    start each row from the one whose image scores highest under ``objective`` (one forward pass
    per candidate, no gradient)."""
    from tqdm.auto import tqdm

    steps = int_value("steps", steps, 1)
    init_candidates = int_value("init_candidates", init_candidates, 1)
    B = len(objective)
    mini = minimizing(objective)
    mini_rows = torch.tensor(mini, dtype=torch.bool)
    opt = optimizer(param.params)
    sel = _Selector(final, snapshot_every, median_of)
    device = param.params[0].device
    hist = torch.zeros(steps, B, device=device)
    done = torch.zeros(B, dtype=torch.bool)
    finals: list[torch.Tensor | None] = [None] * B
    steps_run = [steps] * B
    best = torch.full((B,), -1e30)
    best_step = torch.zeros(B, dtype=torch.long)
    dead_start: list[bool] = [False] * B
    frames: list[torch.Tensor] = []
    for m in param.modules:
        m.eval()
    t0 = time.perf_counter()
    bar = tqdm(total=steps, desc=desc or "render", disable=not progress, leave=False, dynamic_ncols=True)
    img = None
    with classifier.recording(objective.layers) as store:
        chosen = [0] * B
        if init_candidates > 1:
            chosen = _choose_start(param, objective, classifier, store, init_candidates, clamp)
        starts = [param.start_label(j) for j in chosen] if param.start_label else []
        step = -1
        for step in range(steps):
            img = param.image_fn()
            x = img.clamp(0, 1) if clamp else img
            for t in transforms:
                x = t(x)
            classifier.run(classifier.fit_input(x), store)
            total, target = objective.score(store)
            loss = -total.sum()
            if param.penalty is not None:
                loss = loss + param.penalty().sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for op in image_ops:
                op(step, param)
            hist[step] = target.detach()
            sel.observe(step, img)
            if frames_every and step % frames_every == 0:
                frames.append(img.detach().clamp(0, 1).cpu())
            if step == 0:
                dead_start = [bool(d) and not m for d, m in zip((hist[0] <= 0).tolist(), mini)]
                if any(dead_start):
                    log.warning(
                        "%d target(s) start with zero activation: optimizing their pre-activation "
                        "until they become active",
                        sum(dead_start),
                    )
            if (step + 1) % check_every == 0 or step == steps - 1:
                window = hist[step // check_every * check_every : step + 1].cpu()  # since the last check
                now = window[-1]
                bar.update(len(window))
                peak = window.max(0).values
                improved = peak > best + min_delta * best.abs().clamp_min(1.0)
                best = torch.maximum(best, peak)
                best_step[improved] = step
                bar.set_postfix(act=f"{now.mean():.3g}", best=f"{best.max():.3g}")
                if patience:
                    stop = (~done) & (step - best_step >= patience) & ((now > 0) | mini_rows)
                    for i in stop.nonzero().flatten().tolist():
                        finals[i] = sel.select(img)[i].clamp(0, 1)
                        steps_run[i] = step + 1
                        done[i] = True
                    if bool(done.all()):
                        break
    bar.close()
    last = sel.select(img).clamp(0, 1)
    images = torch.stack([finals[i] if finals[i] is not None else last[i] for i in range(B)])
    n = step + 1
    history = hist[:n].cpu()
    act = torch.stack([history[s - 1, i] for i, s in enumerate(steps_run)]) if n else torch.zeros(B)
    nonfinite = ((~torch.isfinite(act)) | (~torch.isfinite(images.detach().cpu()).flatten(1).all(1))).tolist()
    dead = [bool(a <= 0) and not m and not nf for a, m, nf in zip(act.tolist(), mini, nonfinite)]
    if any(nonfinite):
        log.warning(
            "%d target(s) ended with a non-finite activation or image (nan/inf: the optimization "
            "diverged): their images are not results; lower the learning rate",
            sum(nonfinite),
        )
    if any(dead):
        log.warning(
            "%d target(s) never became active on the optimized (transformed) views (activation 0); "
            "results.json gives each final image's own status; if dead: try another seed, more "
            "steps or another initialization",
            sum(dead),
        )
    return RenderResult(
        images.detach(),
        act,
        history,
        [min(s, n) for s in steps_run],
        dead,
        dead_start,
        time.perf_counter() - t0,
        frames,
        nonfinite,
        mini,
        starts,
    )
