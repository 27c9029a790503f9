"""genviz.scoring: the numbers of visualize, evaluate and the audit, computed once, equal to
what each computed on its own (the reference implementations below are those computations)."""

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from genviz.app import measure
from genviz.audit import analyse
from genviz.classifiers import build_classifier
from genviz.evaluation import score
from genviz.references import ReferenceEmbeddings, embed_batched
from genviz.scoring import ClassScores, target_scores
from genviz.targets import parse_targets

TARGETS = ["class:0", "class:3+class:4", "-1*class:2", "channel:relu2:1"]


@pytest.fixture(scope="module")
def clf():
    return build_classifier("tiny")


@pytest.fixture(scope="module")
def images():
    return torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def refs(clf):
    g = torch.Generator().manual_seed(1)
    _, emb = embed_batched(clf, torch.rand(6, 3, 32, 32, generator=g))
    files = [Path(f"r{i}.png") for i in range(6)]
    return ReferenceEmbeddings(clf.name, files, torch.tensor([0, 1, 2, 3, 0, 5]), F.normalize(emb, dim=1))


def old_measure_scores(logits, classes, names, topk=5):
    probs = logits.softmax(-1)
    top = probs.topk(min(topk, probs.shape[1]), dim=1)
    out = []
    for i, cls in enumerate(classes):
        rank = [int((logits[i] > logits[i, c]).sum()) + 1 for c in cls]
        out.append(
            dict(
                prob=float(probs[i, cls].sum()) if cls else None,
                probs=[float(probs[i, c]) for c in cls],
                rank=max(rank) if rank else None,
                ranks=rank,
                top5=[
                    [int(j), names.name(int(j)), round(float(p), 4)]
                    for p, j in zip(top.values[i], top.indices[i])
                ],
            )
        )
    return out


def test_class_scores_equal_visualize_ones(clf, images):
    objectives = parse_targets(TARGETS, clf)
    logits = clf.run(clf.fit_input(images)).detach()
    # ties: the logit rank counts strictly higher logits only
    logits[0, 5] = logits[0, 0]
    scores = ClassScores(logits)
    mine = [target_scores(scores, i, o.classes, clf.classes) for i, o in enumerate(objectives)]
    assert mine == old_measure_scores(logits, [o.classes for o in objectives], clf.classes)
    rows = measure(clf, objectives, images)
    assert [r["classes"] for r in rows] == [[0], [3, 4], [2], []] and rows[3]["prob"] is None
    nonfinite = logits.clone()
    nonfinite[1, 0] = math.nan
    assert target_scores(ClassScores(nonfinite), 1, [3, 4], clf.classes) == {
        "prob": None, "probs": [None, None], "rank": None, "ranks": [None, None], "top5": []
    }  # fmt: skip


def test_evaluate_and_audit_numbers_are_the_old_ones(clf, images, refs):
    logits, emb = embed_batched(clf, images)
    probs = logits.softmax(-1)
    order = probs.argsort(dim=1, descending=True)
    class_rank = order.argsort(dim=1) + 1
    sims = F.normalize(emb, dim=1) @ refs.embeddings.T
    near = sims.topk(3, dim=1)
    targets = [[0], [3, 4], [2], []]
    rows = score(clf, images, targets, refs)
    for i, (row, cls) in enumerate(zip(rows, targets)):
        assert row["top5_classes"] == "; ".join(
            clf.classes.name(int(c)) for c in probs.topk(5, dim=1).indices[i]
        )
        assert row["nearest"] == "; ".join(refs.files[int(j)].name for j in near.indices[i])
        if cls:
            t = torch.tensor(cls)
            assert row["prob"] == float(probs[i, t].mean()) and row["class_rank"] == int(
                class_rank[i, t].max()
            )
            ranks = sims[i].argsort(descending=True).argsort() + 1
            assert row["plausibility"] == float(ranks[torch.isin(refs.classes, t)].min())
    audit = analyse(clf, images, [0, 3, 2, 9], refs, top_other=3, nearest=2)
    for i, (a, c) in enumerate(zip(audit, [0, 3, 2, 9])):
        assert a["prob"] == float(probs[i, c]) and a["rank"] == int((order[i] == c).nonzero()[0, 0]) + 1
        assert [o["class"] for o in a["others"]] == [int(j) for j in order[i] if int(j) != c][:3]
        assert [n["similarity"] for n in a["nearest"]] == [float(v) for v in sims[i].topk(2).values]
