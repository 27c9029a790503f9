import torch

from genviz import objectives as O
from genviz.classifiers import Activation, build_classifier
from genviz.objectives import BatchObjective


def _store(logits, head="relu"):
    post = torch.relu(logits) if head == "relu" else logits
    return {"logits": Activation(logits, logits), "head": Activation(logits, post)}


def test_relu_head_replaces_softmax():
    clf = build_classifier("tiny", head="relu")
    x = torch.rand(2, 3, 32, 32)
    with clf.recording([]) as store:
        logits = clf.run(x, store)
    assert torch.equal(store["head"].post, torch.relu(logits))
    assert (store["head"].post >= 0).all() and (logits < 0).any()


def test_class_loss_is_paper_formula_and_gradient_sign():
    logits = torch.tensor([[2.0, -1.0, 3.0, 0.5]], requires_grad=True)
    bo = BatchObjective([O.class_(0)], lam=0.01)
    total, target = bo.score(_store(logits))
    # -loss = a(c0) - 0.01 * (relu(-1) + relu(3) + relu(0.5))
    assert torch.allclose(total, torch.tensor([2.0 - 0.01 * 3.5]))
    assert torch.allclose(target, torch.tensor([2.0]))
    (-total).sum().backward()  # the loss
    g = logits.grad[0]
    assert g[0] < 0  # raising the target lowers the loss
    assert g[2] > 0 and g[3] > 0  # raising an active other class raises it
    assert g[1] == 0  # a negative other class cannot lower the loss (ReLU head)


def test_dead_target_revives_through_pre_activation():
    logits = torch.tensor([[-2.0, 1.0]], requires_grad=True)
    total, target = BatchObjective([O.class_(0)], lam=0.0).score(_store(logits))
    assert target.item() == 0
    total.sum().backward()
    assert logits.grad[0, 0] > 0  # the gradient is not zero
    logits.grad = None
    total, _ = BatchObjective([O.class_(0)], lam=0.0, revive=False).score(_store(logits))
    total.sum().backward()
    assert logits.grad[0, 0] == 0  # what the paper warns about


def test_batch_objective_rows_match_single_objectives():
    torch.manual_seed(0)
    feat = torch.randn(3, 4, 5, 5)
    logits = torch.randn(3, 6)
    store = {**_store(logits), "f": Activation(feat, torch.relu(feat))}
    objs = [O.class_(1) + 0.5 * O.channel("f", 2), O.neuron("f", 3, 1, 2), O.layer("f")]
    total, _ = BatchObjective(objs, lam=0.01).score(store)
    for i, o in enumerate(objs):
        sub = {k: Activation(v.pre[i : i + 1], v.post[i : i + 1]) for k, v in store.items()}
        single, _ = BatchObjective([o], lam=0.01).score(sub)
        assert torch.allclose(total[i], single[0], atol=1e-6)
    f = torch.relu(feat)
    assert torch.allclose(total[1], f[1, 3, 1, 2])
    assert torch.allclose(total[2], f[2].mean((1, 2)).sum())


def test_objectives_compose():
    obj = O.class_(1) + 0.5 * O.channel("relu1", 2) - O.neuron("relu2", 0)
    assert [t.weight for t in obj.terms] == [1.0, 0.5, -1.0]
    assert obj.classes == [1] and obj.layers == ["head", "relu1", "relu2"]
