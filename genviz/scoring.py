"""Scores of images under a classifier: softmax probabilities, class ranks, top classes, and
the nearest reference images in its penultimate embedding.

One home for the numbers that visualize (``app.measure``: each target's ``prob``, ``rank``,
``top5``), evaluate (``evaluation.score``: top-1/top-5, ``class_rank``, plausibility) and the
audit (``audit.analyse``: rank, the other classes, the nearest real images) report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch
import torch.nn.functional as F

from .classifiers import Classifier
from .references import ReferenceEmbeddings, embed_batched


class ClassScores:
    """Softmax probabilities of a batch of logits [N, K] and the ranks and top classes under
    them."""

    def __init__(self, logits: torch.Tensor):
        self.logits = logits
        self.probs = logits.softmax(-1)

    @cached_property
    def order(self) -> torch.Tensor:
        """[N, K]: the classes of each row, most probable first."""
        return self.probs.argsort(dim=1, descending=True)

    @cached_property
    def rank_table(self) -> torch.Tensor:
        """[N, K]: each class's position (1 = most probable) in :attr:`order`."""
        return self.order.argsort(dim=1) + 1

    def top(self, k: int):
        """``torch.topk`` of each row's probabilities (at most the number of classes)."""
        return self.probs.topk(min(k, self.probs.shape[1]), dim=1)

    def logit_rank(self, i: int, c: int) -> int:
        """1 + the number of classes whose logit is strictly higher than class ``c``'s in row
        ``i`` (tied classes share a rank)."""
        return int((self.logits[i] > self.logits[i, c]).sum()) + 1

    def finite(self) -> list[bool]:
        """Rows whose logits are all finite."""
        return torch.isfinite(self.logits).all(1).tolist()


def no_class_scores(n_classes: int) -> dict:
    """The class scores of a target whose output is not finite: none."""
    return {"prob": None, "probs": [None] * n_classes, "rank": None, "ranks": [None] * n_classes, "top5": []}


def target_scores(scores: ClassScores, i: int, classes: list[int], names, topk: int = 5) -> dict:
    """A visualize result's class scores in row ``i``: ``prob`` (summed over the target's
    classes), ``probs``, ``rank`` (the worst of its classes), ``ranks`` (by logit) and ``top5``
    (``[index, name, prob]``, prob rounded to 4 places); none for non-finite logits."""
    if not bool(torch.isfinite(scores.logits[i]).all()):
        return no_class_scores(len(classes))
    rank = [scores.logit_rank(i, c) for c in classes]
    top = scores.top(topk)
    probs = scores.probs
    return {
        "prob": float(probs[i, classes].sum()) if classes else None,
        "probs": [float(probs[i, c]) for c in classes],
        "rank": max(rank) if rank else None,
        "ranks": rank,
        "top5": [
            [int(j), names.name(int(j)), round(float(p), 4)] for p, j in zip(top.values[i], top.indices[i])
        ],
    }


def similarities(emb: torch.Tensor, refs: ReferenceEmbeddings) -> torch.Tensor:
    """[N, R]: cosine similarity of each embedding to each reference image."""
    return F.normalize(emb.float(), dim=1) @ refs.embeddings.T


def nearest(sims: torch.Tensor, k: int):
    """``torch.topk`` of each row's similarities: its ``k`` nearest references (at most all)."""
    return sims.topk(min(k, sims.shape[1]), dim=1)


def plausibility_ranks(
    sims: torch.Tensor, refs: ReferenceEmbeddings, targets: list[list[int]]
) -> list[float]:
    """Rank (1 = most similar) of the best-ranked reference image of the target's classes
    among all reference images, by the similarities ``sims`` [N, R]; NaN when the reference
    set has no image of those classes."""
    # rank of every reference image in its row: 1 + number of strictly more similar references
    order = sims.argsort(dim=1, descending=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(1, sims.shape[1] + 1).expand_as(order).contiguous())
    out = []
    for i, cls in enumerate(targets):
        mask = torch.isin(refs.classes, torch.tensor(cls, dtype=torch.long)) if cls else None
        if mask is None or not mask.any():
            out.append(math.nan)
        else:
            out.append(float(ranks[i][mask].min()))
    return out


@dataclass
class ImageScores:
    """What an evaluator makes of a batch of images."""

    classes: ClassScores
    embeddings: torch.Tensor  # [N, D] penultimate embeddings
    sims: torch.Tensor | None  # [N, R] similarity to the reference images (None without them)


def score_images(
    clf: Classifier,
    images: torch.Tensor,
    refs: ReferenceEmbeddings | None = None,
    batch_size: int = 32,
    desc: str | None = None,
) -> ImageScores:
    """Run ``clf`` on images [N, 3, H, W] in [0, 1] in batches: class scores, embeddings and
    (given ``refs``) their similarity to the reference images."""
    logits, emb = embed_batched(clf, images, batch_size, desc=desc)
    sims = similarities(emb, refs) if refs is not None else None
    return ImageScores(ClassScores(logits), emb, sims)
