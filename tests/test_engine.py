import pytest
import torch
from conftest import TINY, compose_cfg

from genviz.app import generate
from genviz.generator import Decoder


def _run(overrides, **kw):
    return generate(compose_cfg("visualize", TINY + list(overrides)), **kw)


def _tiny_dae_checkpoint(path, code_stats: bool = False):
    """A tiny decoder in the checkpoint format; ``code_stats``: with the training codes'
    statistics (as train_dae.py writes them now), else the older format without them."""
    torch.manual_seed(1)
    kw = dict(code_channels=8, code_size=2, channels=[16, 16, 8], layout="same")
    dec = Decoder(**kw)
    for m in dec.modules():  # a signal-preserving init stands in for training
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    state = {f"decoder.{k}": v for k, v in dec.state_dict().items()}
    if code_stats:
        n = dec.code_dim
        state.update(
            code_mean=torch.randn(n) * 0.5, code_std=torch.rand(n) + 0.5, code_count=torch.tensor(100)
        )
    torch.save({"hyper_parameters": {"decoder": kw}, "state_dict": state}, path)
    return str(path)


def test_untrained_mode_raises_the_target_activation():
    res = _run(["target=[channel:relu2:3,layer:relu3]", "generator.steps=40"])
    for r in res:
        hist = r["history"]
        assert hist[-1] > hist[0] * 1.2 and r["status"] == "ok"
        assert r["tensor"].shape == (3, 16, 16)
        assert 0 <= r["tensor"].min() and r["tensor"].max() <= 1


def test_pretrained_mode_only_moves_alpha_and_raises_activation(tmp_path):
    ckpt = _tiny_dae_checkpoint(tmp_path / "dae.ckpt")
    res = _run(
        [
            "generator=dae",
            f"generator.param.checkpoint={ckpt}",
            "generator.param.compile=false",
            "generator.steps=60",
            "generator.optimizer.lr=2",
            "generator.param.penalty.weight=1e-4",
            "target=channel:relu2:1",
        ]
    )
    assert res[0]["history"][-1] > 1.1 * res[0]["history"][0]
    assert res[0]["tensor"].shape == (3, 16, 16)


_SGD = [
    "generator.optimizer._target_=torch.optim.SGD",
    "~generator.optimizer.betas",
    "~generator.optimizer.eps",
]


def test_batch_equals_one_by_one_with_the_same_seed(tmp_path):
    """Each row is its own problem: a batch reproduces one-by-one runs up to float rounding.
    Untrained mode is compared under SGD: batched (grouped) convs round differently at 1e-7, and
    Adamax, which divides by the gradient's size, turns a 1e-9 rounding gradient into a step of
    lr/10, so with it rows drift apart by ~1e-3 per step while a different seed differs by ~0.1."""
    targets = ["channel:relu2:3", "class:1", "neuron:relu1:2"]
    ckpt = _tiny_dae_checkpoint(tmp_path / "dae.ckpt")
    for mode, steps, atol in (
        (["generator=dae", f"generator.param.checkpoint={ckpt}", "generator.param.compile=false"], 15, 1e-5),
        (_SGD, 15, 1e-4),
    ):
        batch = _run([*mode, f"target=[{','.join(targets)}]", f"generator.steps={steps}", "seed=3"])
        assert len(batch) == 3
        for t, b in zip(targets, batch):
            one = _run([*mode, f"target={t}", f"generator.steps={steps}", "seed=3"])[0]
            assert one["target"] == b["target"] == t
            assert torch.allclose(one["tensor"], b["tensor"], atol=atol), (mode, t)


def test_seed_reproducible_and_seed_matters():
    a = _run(["target=channel:relu2:3", "generator.steps=5", "seed=1"])[0]["tensor"]
    b = _run(["target=channel:relu2:3", "generator.steps=5", "seed=1"])[0]["tensor"]
    c = _run(["target=channel:relu2:3", "generator.steps=5", "seed=2"])[0]["tensor"]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_dead_target_is_flagged_not_returned_silently():
    # a huge negative bias on the target logit: it can never become active in 3 steps
    from genviz.classifiers import build_classifier

    clf = build_classifier("tiny")
    with torch.no_grad():
        clf.model.fc2.bias[4] = -1e4
    res = _run(["target=class:4", "generator.steps=3"], classifier=clf)[0]
    assert res["dead_start"] and res["status"] == "dead" and res["activation"] == 0


def test_median_of_snapshots_and_early_stopping():
    res = _run(
        [
            "target=channel:relu2:3",
            "generator.steps=200",
            "generator.final=median",
            "generator.snapshot_every=2",
            "generator.median_of=3",
            "generator.patience=10",
            "generator.min_delta=10",
            "generator.check_every=5",
        ]
    )[0]
    assert res["steps"] < 200  # a plateau (no 10x improvement) stops it early
    assert res["status"] == "ok"


def test_generator_transforms_are_applied_and_seeded():
    """generator.transforms (the baselines' pad/jitter/scale/rotate block) reaches the engine:
    the same run with transforms differs from the plain one, still raises the target, and
    repeats exactly under the same seed."""
    tf = ["+generator.transforms={pad: 2, jitter: 2, scale: [0.9, 1.1], rotate: [-5, 5]}"]
    base = ["target=channel:relu2:3", "generator.steps=25", "seed=1"]
    plain = _run(base)[0]
    a, b = _run(base + tf)[0], _run(base + tf)[0]
    assert torch.equal(a["tensor"], b["tensor"])
    assert not torch.allclose(a["tensor"], plain["tensor"], atol=1e-3)
    assert a["history"][-1] > 1.2 * a["history"][0] and a["status"] == "ok"


def test_compiled_generator_matches_eager():
    """generator.param.compile=true (torch.compile) renders the image the eager generator does."""
    base = ["target=channel:relu2:3", "generator.steps=6", "seed=2"]
    eager = _run(base)[0]["tensor"]
    compiled = _run(base + ["generator.param.compile=true"])[0]["tensor"]
    assert torch.allclose(eager, compiled, atol=1e-3)


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "optimizer":
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_improved_configs_differ_from_the_paper_modes_only_where_documented():
    from omegaconf import OmegaConf

    def gen(name):
        return _flat(OmegaConf.to_container(compose_cfg("visualize", [f"generator={name}"]).generator))

    def diff(a, b):
        return {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}

    # docs/method.md and conf/generator/dae_fast.yaml say why each of these differs
    transforms = {f"transforms.{k}" for k in ("pad", "jitter", "scale", "rotate", "jitter_after")}
    assert diff(gen("dae"), gen("dae_fast")) == {
        "optimizer", "steps", "final", "param.compile", "param.alpha.init", "param.alpha.relu",
        "param.alpha.scale", "param.noise.kind", "param.noise.mean", "param.noise.std",
        "param.penalty.kind", "param.penalty.mean", "param.penalty.weight", "param.code_range.kind",
        "param.code_range.sigma",
        "init_candidates", *transforms,
    }  # fmt: skip
    assert gen("dae_fast")["optimizer"]["_target_"] == "torch.optim.Adam"
    assert "momentum" not in gen("dae_fast")["optimizer"]
    fast, small = gen("untrained_fast"), gen("untrained_small")
    assert diff(small, fast) == {"param.noise.kind", "optimizer"}
    assert fast["param.noise.kind"] == "none" and fast["optimizer"]["lr"] == 0.01


def test_dae_fast_raises_the_target_activation(tmp_path):
    ckpt = _tiny_dae_checkpoint(tmp_path / "dae.ckpt", code_stats=True)
    res = _run(
        [
            "generator=dae_fast_sampled",
            f"generator.param.checkpoint={ckpt}",
            "generator.param.compile=false",
            "generator.param.penalty.weight=1e-4",  # the tiny net's activations are ~0.1
            "generator.steps=30",
            "target=[channel:relu2:1,layer:relu2]",
        ]
    )
    for r in res:
        assert r["status"] == "ok" and r["history"][-1] > 1.1 * r["history"][0], r["history"]


def _sampled_param(ckpt, batch, seed=0, noise=None):
    from genviz.params import generator_prior

    return generator_prior(
        batch,
        checkpoint=ckpt,
        noise=noise or {"kind": "none"},
        alpha={"init": "sample", "relu": False, "scale": 1.0},
        penalty={"kind": "none"},
        seed=seed,
    )


def test_init_candidates_start_each_row_from_its_best_draw(tmp_path):
    """Each row starts from the candidate its own objective scores highest, whatever else is
    in the batch; j = 0 is the start a run without candidates has."""
    from genviz.classifiers import build_classifier
    from genviz.engine import _choose_start
    from genviz.objectives import BatchObjective
    from genviz.targets import parse_targets

    ckpt = _tiny_dae_checkpoint(tmp_path / "dae.ckpt", code_stats=True)
    clf = build_classifier("tiny")
    targets = ["channel:relu2:1", "class:1", "class:3"]
    bo = BatchObjective(parse_targets(targets, clf), revive=True)

    def scores(param):
        with torch.no_grad(), clf.recording(bo.layers) as store:
            clf.run(clf.fit_input(param.image_fn().clamp(0, 1)), store)
            return bo.score(store)[0]

    param = _sampled_param(ckpt, 3, seed=1)
    start0 = param.params[0].detach().clone()
    per_candidate = []
    for j in range(6):
        param.redraw(j)
        per_candidate.append(scores(param))
    per_candidate = torch.stack(per_candidate)  # [candidates, rows]
    param.redraw(0)
    assert torch.equal(param.params[0], start0)
    with clf.recording(bo.layers) as store:
        _choose_start(param, bo, clf, store, 6, clamp=True)
    chosen = scores(param)
    assert torch.allclose(chosen, per_candidate.max(0).values)
    assert (per_candidate.argmax(0) > 0).any()  # some row left the default start
    assert len(set(per_candidate.argmax(0).tolist())) > 1  # rows chose differently
    alone = _sampled_param(ckpt, 1, seed=1)
    one = BatchObjective(parse_targets(targets[2:], clf), revive=True)
    with clf.recording(one.layers) as store:
        _choose_start(alone, one, clf, store, 6, clamp=True)
    assert torch.allclose(alone.params[0][0], param.params[0][2])


def test_init_candidates_through_the_config_and_their_errors(tmp_path):
    ckpt = _tiny_dae_checkpoint(tmp_path / "dae.ckpt", code_stats=True)
    fast = [
        "generator=dae_fast_sampled",
        f"generator.param.checkpoint={ckpt}",
        "generator.steps=2",
        "seed=1",
        "target=[channel:relu2:1,channel:relu2:5,channel:relu1:2,layer:relu2]",
    ]
    one = _run([*fast, "generator.init_candidates=1"])
    many = _run([*fast, "generator.init_candidates=8"])
    assert any(not torch.equal(a["tensor"], b["tensor"]) for a, b in zip(one, many))
    with pytest.raises(ValueError, match="init_candidates=0: must be at least 1"):
        _run([*fast, "generator.init_candidates=0"])
    with pytest.raises(ValueError, match="alpha.init=sample"):
        _run(["target=channel:relu2:1", "generator.steps=2", "+generator.init_candidates=3"])


def test_init_candidates_keep_the_noise_stream_and_their_own_seeds(tmp_path):
    """A candidate draw is never another seed's start, and after the choice the code noise
    continues as it would have without candidates."""
    from genviz.classifiers import build_classifier
    from genviz.engine import _choose_start
    from genviz.objectives import BatchObjective
    from genviz.targets import parse_targets

    ckpt = _tiny_dae_checkpoint(tmp_path / "dae.ckpt", code_stats=True)

    def param(seed):
        return _sampled_param(ckpt, 2, seed, noise={"kind": "additive", "mean": 0.0, "std": 0.5})

    a, b = param(0), param(0)
    b.redraw(1)
    assert not torch.equal(b.params[0], param(1).params[0])  # candidate 1 of seed 0 is not seed 1
    clf = build_classifier("tiny")
    bo = BatchObjective(parse_targets(["channel:relu2:1", "class:3"], clf), revive=True)
    with clf.recording(bo.layers) as store:
        _choose_start(b, bo, clf, store, 5, clamp=True)
    with torch.no_grad():
        a.params[0].copy_(b.params[0])  # same code: the images differ only if the noise does
        for _ in range(3):
            assert torch.equal(a.image_fn(), b.image_fn())


def test_progress_bar_counts_each_step_once(monkeypatch):
    """The bar advances by the steps since its last update: a run whose length is not a
    multiple of ``check_every`` ends at its step count, not one window past it."""
    import tqdm.auto

    bars = []

    class Recorder:
        def __init__(self, total, **kw):
            self.total, self.n = total, 0
            bars.append(self)

        def update(self, k):
            self.n += k

        def set_postfix(self, **kw):
            pass

        def close(self):
            pass

    monkeypatch.setattr(tqdm.auto, "tqdm", Recorder)
    _run(["target=channel:relu2:3", "generator.steps=13", "generator.check_every=5", "progress=true"])
    assert [(b.total, b.n) for b in bars] == [(13, 13)]
