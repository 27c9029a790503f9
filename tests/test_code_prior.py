"""The code prior (PPGN's DAE on the generator's code): it trains, its term is low on real codes
and high off them, activation maximization can use it, and a missing one is a clear error."""

import copy

import pytest
import torch
from conftest import TINY, compose_cfg
from test_engine import _tiny_dae_checkpoint

from genviz import code_prior
from genviz.app import generate
from genviz.generator import decoder_from_checkpoint
from genviz.params import generator_prior

C, S = 8, 2  # the tiny decoder's code: 8 x 2 x 2 = 32


def _real_codes(n: int, seed: int = 0) -> torch.Tensor:
    """Codes on a 3-dimensional subspace of the 32 (as real codes are on a thin set), shifted and scaled."""
    g = torch.Generator().manual_seed(0)
    basis = torch.randn(3, C * S * S, generator=g)
    u = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed + 1))
    return 2.0 + 3.0 * u @ basis + 0.01 * torch.randn(n, C * S * S, generator=g)


@pytest.fixture(scope="module")
def trained():
    return code_prior.fit(_real_codes(2000), C, S, hidden=32, noise=0.5, steps=600, batch_size=128)


def test_the_prior_trains_and_its_term_is_low_on_real_codes_only(trained):
    prior, curve = trained
    assert curve[-1] < 0.5 * curve[0]  # the denoising loss falls
    held = _real_codes(200, seed=7)  # codes it never saw, from the same set
    off = prior.mean + prior.std * torch.randn(200, C * S * S, generator=torch.Generator().manual_seed(3))
    e_real, e_off = prior.energy(held).median(), prior.energy(off).median()
    assert e_real < e_off / 5


def test_gradient_steps_on_the_term_bring_a_code_toward_the_real_ones(trained):
    prior, _ = trained
    start = prior.mean + prior.std * torch.randn(4, C * S * S, generator=torch.Generator().manual_seed(5))
    h = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([h], lr=0.05)
    for _ in range(100):
        opt.zero_grad()
        prior.energy(h).sum().backward()
        opt.step()
    assert (prior.energy(h.detach()) < 0.5 * prior.energy(start)).all()


def test_a_bank_spreads_over_classes_and_keeps_their_labels(tmp_path):
    labels = ["a"] * 10 + ["b"] * 3 + ["c"]
    picked = code_prior.spread(labels, 3)
    assert sorted(labels[i] for i in picked) == ["a", "b", "c"]  # one of each before a second of any
    assert len(set(code_prior.spread(labels, 14))) == 14 and len(code_prior.spread(labels, 99)) == 14
    codes = _real_codes(len(labels))
    prior, _ = code_prior.fit(
        _real_codes(300), C, S, hidden=8, steps=10, bank=5, bank_codes=codes, bank_labels=labels
    )
    assert len(prior.bank) == 5 and set(prior.bank_labels) == {"a", "b", "c"}
    for row, label in zip(prior.bank, prior.bank_labels):  # each code kept with its own label
        i = next(i for i in range(len(codes)) if torch.allclose(codes[i], row))
        assert labels[i] == label
    back = code_prior.load(code_prior.save(prior, tmp_path / "p.pt"))
    assert back.bank_labels == prior.bank_labels and torch.equal(back.bank, prior.bank)
    with pytest.raises(ValueError, match="one label each"):
        code_prior.fit(_real_codes(300), C, S, hidden=8, steps=10, bank_codes=codes, bank_labels=labels[:3])


def test_the_prior_saved_beside_a_checkpoint_is_found_and_used(tmp_path, trained):
    ckpt = _tiny_dae_checkpoint(tmp_path / "dae.ckpt", code_stats=True)
    assert decoder_from_checkpoint(ckpt).code_prior_source is None
    code_prior.save(trained[0], tmp_path / "dae.code_prior.pt")
    assert decoder_from_checkpoint(ckpt).code_prior_source == tmp_path / "dae.code_prior.pt"
    param = generator_prior(
        2, checkpoint=ckpt, alpha={"init": "mean", "relu": False}, penalty={"kind": "code_dae", "weight": 2.0}
    )
    pen = param.penalty()
    assert pen.shape == (2,) and torch.isfinite(pen).all()
    res = generate(
        compose_cfg(
            "visualize",
            TINY
            + [
                "generator=dae_fast",
                f"generator.param.checkpoint={ckpt}",
                "generator.param.penalty.kind=code_dae",
                "generator.param.penalty.weight=0.1",
                "generator.steps=30",
                "target=channel:relu2:1",
            ],
        )
    )
    assert res[0]["history"][-1] > res[0]["history"][0]  # the target still rises under the prior


def test_no_prior_or_the_wrong_size_is_a_clear_error(tmp_path):
    ckpt = _tiny_dae_checkpoint(tmp_path / "dae.ckpt", code_stats=True)
    with pytest.raises(ValueError, match="genviz.dae.codes"):
        generator_prior(1, checkpoint=ckpt, alpha={"init": "mean"}, penalty={"kind": "code_dae"})
    other, _ = code_prior.fit(torch.randn(50, 4 * 2 * 2), 4, 2, hidden=8, steps=100)
    code_prior.save(other, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="16 dimensions, the decoder's have 32"):
        generator_prior(
            1,
            checkpoint=ckpt,
            alpha={"init": "mean"},
            penalty={"kind": "code_dae", "prior": str(tmp_path / "other.pt")},
        )
    with pytest.raises(FileNotFoundError, match="genviz.dae.codes"):
        code_prior.load(tmp_path / "missing.pt")
    (tmp_path / "text.pt").write_text("not a prior")
    with pytest.raises(ValueError, match="not a readable code prior"):
        code_prior.load(tmp_path / "text.pt")


def test_a_prior_of_another_decoder_is_refused(tmp_path, trained):
    ckpt = _tiny_dae_checkpoint(tmp_path / "dae.ckpt", code_stats=True)
    code_prior.save(trained[0], tmp_path / "dae.code_prior.pt", decoder="0123456789abcdef")
    with pytest.raises(ValueError, match="another decoder"):
        generator_prior(1, checkpoint=ckpt, alpha={"init": "mean"}, penalty={"kind": "code_dae"})
    own = code_prior.fingerprint(decoder_from_checkpoint(ckpt))
    code_prior.save(trained[0], tmp_path / "dae.code_prior.pt", decoder=own)
    generator_prior(1, checkpoint=ckpt, alpha={"init": "mean"}, penalty={"kind": "code_dae"})  # its own: fine
    with pytest.raises(ValueError, match="alpha.relu=false"):
        generator_prior(
            1, checkpoint=ckpt, alpha={"init": "bank", "relu": True}, penalty={"kind": "code_dae"}
        )


def test_a_run_can_start_from_a_real_code_the_prior_keeps(tmp_path, trained):
    prior, _ = trained
    assert len(prior.bank) == 256  # a seeded draw of the training codes, in the decoder's units
    ckpt = _tiny_dae_checkpoint(tmp_path / "dae.ckpt", code_stats=True)
    ck = torch.load(ckpt, weights_only=True)  # the decoder's code statistics: those of the real codes
    ck["state_dict"].update(code_mean=prior.mean.clone(), code_std=prior.std.clone())
    torch.save(ck, ckpt)
    code_prior.save(prior, tmp_path / "dae.code_prior.pt")
    for code_range in ({"kind": "none"}, {"kind": "stats", "sigma": 3.0}):
        param = generator_prior(
            3,
            checkpoint=ckpt,
            alpha={"init": "bank", "relu": False},
            noise={"kind": "none"},
            code_range=code_range,
            penalty={"kind": "code_dae", "weight": 1.0},
        )
        a = param.params[0].detach().clone()
        assert torch.equal(a[0], a[1]) and torch.equal(a[0], a[2])  # every row starts alike
        st = decoder_from_checkpoint(ckpt).code_stats
        seen = a[:1]
        if code_range["kind"] == "stats":  # the decoder sees the bank code itself, through the squash
            half = 3.0 * st["std"]
            seen = st["mean"] + half * torch.tanh((a[:1] - st["mean"]) / half)
        dist = (prior.bank - seen).abs().amax(1)
        assert dist.min() < 1e-3 * prior.bank.abs().max()
    param.redraw(1)
    assert not torch.equal(param.params[0].detach()[0], a[0])  # another candidate: another bank code
    param.redraw(0)
    assert torch.equal(param.params[0].detach(), a)


def test_the_shipped_prior_belongs_to_the_shipped_decoder():
    param = generator_prior(
        1,
        alpha={"init": "bank", "relu": False},
        noise={"kind": "none"},
        code_range={"kind": "stats", "sigma": 3.0},
        penalty={"kind": "code_dae", "weight": 1.0},
    )
    assert torch.isfinite(param.penalty()).all()


def test_candidates_as_many_as_the_bank_try_every_real_code_once(tmp_path, trained):
    """init_candidates = the bank's size: each row starts from the real code its own objective
    scores highest, the same as scoring every code alone (B codes per forward pass)."""
    from genviz.classifiers import build_classifier
    from genviz.engine import _choose_start
    from genviz.objectives import BatchObjective
    from genviz.targets import parse_targets

    prior, _ = trained
    ckpt = _tiny_dae_checkpoint(tmp_path / "dae.ckpt", code_stats=True)
    ck = torch.load(ckpt, weights_only=True)
    ck["state_dict"].update(code_mean=prior.mean.clone(), code_std=prior.std.clone())
    torch.save(ck, ckpt)
    small, _ = code_prior.fit(_real_codes(40), C, S, hidden=8, steps=20, bank=12)
    code_prior.save(small, tmp_path / "dae.code_prior.pt")
    clf = build_classifier("tiny")
    targets = ["class:1", "channel:relu2:3", "class:4"]
    bo = BatchObjective(parse_targets(targets, clf), revive=True)

    def param():
        return generator_prior(
            3,
            checkpoint=ckpt,
            alpha={"init": "bank", "relu": False},
            noise={"kind": "none"},
            code_range={"kind": "none"},
            penalty={"kind": "code_dae", "weight": 1.0},
        )

    def scores(p):
        with torch.no_grad(), clf.recording(bo.layers) as store:
            clf.run(clf.fit_input(p.image_fn().clamp(0, 1)), store)
            return bo.score(store)[0]

    p = param()
    each, seen = [], set()
    for j in range(12):
        p.redraw(j)
        each.append(scores(p))
        seen.add(tuple(p.params[0][0].tolist()))
    each = torch.stack(each)  # [bank code, row]
    assert len(seen) == 12  # every code of the bank once
    p = param()
    with clf.recording(bo.layers) as store:
        _choose_start(p, bo, clf, store, 12, clamp=True)
    assert torch.allclose(scores(p), each.max(0).values, atol=1e-5)
    assert len(set(each.argmax(0).tolist())) > 1  # the rows chose different codes


def test_dae_fast_starts_from_real_codes_and_names_the_fix_without_a_prior(tmp_path, trained):
    """generator=dae_fast's defaults: the best of the bank's real codes for each target, then
    the target rises; a checkpoint without a code prior is one clear error naming both remedies."""
    prior, _ = trained
    ckpt = _tiny_dae_checkpoint(tmp_path / "dae.ckpt", code_stats=True)
    ck = torch.load(ckpt, weights_only=True)  # the decoder's code statistics: those of the real codes
    ck["state_dict"].update(code_mean=prior.mean.clone(), code_std=prior.std.clone())
    torch.save(ck, ckpt)
    cfg = TINY + [
        "generator=dae_fast",
        f"generator.param.checkpoint={ckpt}",
        "generator.steps=30",
        "generator.optimizer.lr=0.1",
        "target=[class:1,channel:relu2:3]",
    ]
    with pytest.raises(ValueError, match=r"genviz\.dae\.codes.*generator=dae_fast_sampled"):
        generate(compose_cfg("visualize", cfg))
    code_prior.save(trained[0], tmp_path / "dae.code_prior.pt")
    res = generate(compose_cfg("visualize", cfg))
    for r in res:
        assert sum(r["history"][-5:]) / 5 > r["history"][0]
    sampled = generate(compose_cfg("visualize", [*cfg, "generator=dae_fast_sampled"]))
    assert len(sampled) == 2 and not torch.equal(sampled[0]["tensor"], res[0]["tensor"])
    assert "start" not in res[0]  # a bank without labels: the start is not described

    labelled = copy.deepcopy(trained[0])  # a bank whose codes are photos of two classes
    labelled.bank_labels = ["n01440764", "n01443537"] * (len(labelled.bank) // 2)
    code_prior.save(labelled, tmp_path / "dae.code_prior.pt")
    from genviz.app import save
    from genviz.runs import read_results

    res = generate(compose_cfg("visualize", cfg))
    assert {r["start"] for r in res} <= {"a photo of tench (n01440764)", "a photo of goldfish (n01443537)"}
    save(res, tmp_path / "run")
    assert [r.start for r in read_results(tmp_path / "run" / "results.json")[1]] == [r["start"] for r in res]
