"""The decoder recipes beyond the paper: a frozen classifier trunk as encoder, perceptual and
adversarial losses, upsampling choices, augmentation, held-out class filtering and the code
statistics that visualize.py uses.  Tiny configs on the CPU (the `tiny` classifier as trunk)."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY, compose_cfg, make_images, tiny_cfg
from hydra.utils import instantiate

from genviz.dae.data import ImageDataModule, imagenet_wnids, list_images
from genviz.dae.train import train, warm_start
from genviz.generator import UPSAMPLING, CheckpointError, Decoder, decoder_from_checkpoint

TRUNK = [
    "+dae.encoder.kind=trunk",
    "+dae.encoder.classifier=tiny",
    "+dae.encoder.layer=relu2",
    "+dae.encoder.head=conv",
    "~dae.encoder.channels",
    "~dae.encoder.hidden",
    "+dae.encoder.hidden=8",
]
PERCEPTUAL = ["+dae.perceptual={weight: 1.0, classifier: tiny, layers: [relu1, relu3]}"]
ADVERSARIAL = ["+dae.adversarial={weight: 0.1, channels: 4, lr: 1e-3}"]


def _trunk_weights(model):
    return {k: v.clone() for k, v in model.encoder.trunk.classifier.state_dict().items()}


def test_frozen_trunk_is_unchanged_by_training_and_not_in_the_checkpoint(tmp_path):
    cfg = tiny_cfg(tmp_path, *TRUNK, *PERCEPTUAL, "trainer.max_steps=4")
    model = instantiate(cfg.dae)
    before = _trunk_weights(model)
    trainable = {id(p) for p in model.generator_parameters()}
    assert not any(id(p) in trainable for p in model.encoder.trunk.classifier.parameters())
    assert not any(p.requires_grad for p in model.encoder.trunk.classifier.parameters())

    seen = {}
    orig = model.training_step

    def step(batch, *args):
        seen["trunk_training"] = model.encoder.trunk.classifier.training
        return orig(batch, *args)

    model.training_step = step
    import hydra
    import pytorch_lightning as pl

    dm = hydra.utils.instantiate(cfg.data)
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, callbacks=[], enable_checkpointing=False)
    head_before = {k: v.clone() for k, v in model.encoder.head.state_dict().items()}
    trainer.fit(model, datamodule=dm)
    assert isinstance(trainer, pl.Trainer) and trainer.global_step == 4
    assert seen["trunk_training"] is False  # eval mode throughout
    after = _trunk_weights(model)
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN statistics
    assert any(not torch.equal(head_before[k], v) for k, v in model.encoder.head.state_dict().items())
    assert not any(k.startswith("encoder.trunk") for k in model.state_dict())


@pytest.mark.parametrize("extra", [PERCEPTUAL, ADVERSARIAL + PERCEPTUAL], ids=["perceptual", "adversarial"])
def test_recipes_train_and_resume_from_last(tmp_path, extra):
    train(tiny_cfg(tmp_path, *TRUNK, *extra, "trainer.max_steps=4"))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ck = torch.load(last, weights_only=True)
    adversarial = extra is not PERCEPTUAL
    # manual optimization counts one step per optimizer: 2 per batch with the discriminator
    assert ck["global_step"] == 4
    assert len(ck["optimizer_states"]) == (2 if adversarial else 1)
    assert any(k.startswith("discriminator.") for k in ck["state_dict"]) == adversarial
    d0 = {k: v.clone() for k, v in ck["state_dict"].items() if k.startswith("discriminator.")}

    metrics = train(tiny_cfg(tmp_path, *TRUNK, *extra, "trainer.max_steps=8", "ckpt_path=last"))
    ck2 = torch.load(last, weights_only=True)
    assert ck2["global_step"] == 8 and torch.isfinite(torch.tensor(metrics["train/loss"]))
    assert "train/perceptual" in metrics
    if adversarial:
        assert "train/d_loss" in metrics and "train/g_adv" in metrics
        moved = [not torch.equal(d0[k], ck2["state_dict"][k]) for k in d0 if k.endswith("original")]
        assert moved and all(moved)  # the discriminator's optimizer stepped after the resume
        # both optimizers' states were restored and advanced
        assert all(s["state"] for s in ck2["optimizer_states"])


def test_code_statistics_round_trip_and_the_clamp_holds_in_visualize(tmp_path):
    train(tiny_cfg(tmp_path, "trainer.max_steps=6"))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    sd = torch.load(last, weights_only=True)["state_dict"]
    assert int(sd["code_count"]) == 6 * 4  # every training code counted
    dec = decoder_from_checkpoint(str(last))
    assert torch.equal(dec.code_stats["mean"], sd["code_mean"]) and (dec.code_stats["std"] > 0).all()

    from genviz import params

    sigma = 0.5
    seen = []
    real = params._code_range

    def spy(*args):
        fn = real(*args)

        def squash(c):
            out = fn(c)
            seen.append(out.detach().clone())
            return out

        return squash

    params._code_range = spy
    try:
        from genviz.app import generate

        res = generate(
            compose_cfg(
                "visualize",
                [
                    *TINY,
                    "generator=dae_fast_sampled",
                    f"generator.param.checkpoint={last}",
                    "generator.param.compile=false",
                    "generator.param.alpha.init=mean",
                    "generator.param.code_range.kind=stats",
                    f"generator.param.code_range.sigma={sigma}",
                    "generator.optimizer.lr=1.0",
                    "generator.steps=15",
                    "target=[class:1,class:2]",
                ],
            )
        )
    finally:
        params._code_range = real
    assert len(res) == 2 and len(seen) >= 15
    mu, half = dec.code_stats["mean"], sigma * dec.code_stats["std"]
    for code in seen:
        assert ((code - mu).abs() <= half + 1e-5).all()
    assert max(((c - mu).abs() / half).max() for c in seen) > 0.9  # it moved, up to the bound


def test_options_that_need_code_statistics_say_so(tmp_path):
    from test_engine import _tiny_dae_checkpoint

    from genviz.app import generate

    old = _tiny_dae_checkpoint(tmp_path / "old.ckpt")  # the format before code statistics
    assert decoder_from_checkpoint(old).code_stats is None
    cfg = compose_cfg(
        "visualize",
        [*TINY, "generator=dae_fast_sampled", f"generator.param.checkpoint={old}", "generator.param.compile=false",
         "generator.param.alpha.init=mean", "generator.steps=2", "target=class:1"],
    )  # fmt: skip
    with pytest.raises(ValueError, match="alpha.init=mean needs the code statistics"):
        generate(cfg)


def test_old_lightning_checkpoint_without_code_statistics_resumes(tmp_path):
    train(tiny_cfg(tmp_path, "trainer.max_steps=3"))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ck = torch.load(last, weights_only=True)
    for k in ("code_mean", "code_std", "code_count"):
        del ck["state_dict"][k]
    torch.save(ck, last)
    assert decoder_from_checkpoint(str(last)).code_stats is None
    train(tiny_cfg(tmp_path, "trainer.max_steps=5", "ckpt_path=last"))
    assert int(torch.load(last, weights_only=True)["state_dict"]["code_count"]) == 2 * 4


@pytest.mark.parametrize("mode", UPSAMPLING)
def test_upsampling_modes_shapes_and_groups(mode):
    torch.manual_seed(0)
    kw = dict(code_channels=4, code_size=2, channels=[8, 4], layout="same", upsample=mode)
    one = Decoder(**kw).eval()
    assert one(torch.randn(1, one.code_dim)).shape == (1, 3, 8, 8)
    two = Decoder(**kw, groups=2).eval()
    with torch.no_grad():  # group g of the grouped network == the single decoder
        for pb, p1 in zip(two.state_dict().values(), one.state_dict().values()):
            pb.copy_(p1.repeat(2, *([1] * (p1.dim() - 1))) if p1.dim() else p1)
    code = torch.randn(1, one.code_dim)
    out = two(code.repeat(1, 2))
    assert torch.allclose(out[0], one(code)[0], atol=1e-5) and torch.allclose(out[1], out[0], atol=1e-5)
    with pytest.raises(ValueError, match="upsample must be one of"):
        Decoder(**{**kw, "upsample": "cubic"})


def test_even_odd_classes_and_augmentation(tmp_path):
    even, odd = set(imagenet_wnids("even")), set(imagenet_wnids("odd"))
    assert len(even) == len(odd) == 500 and not even & odd

    folder = tmp_path / "flat"
    for wnid in ("n01440764", "n01443537", "n01484850"):  # classes 0 (even), 1 (odd), 2 (even)
        for p in make_images(tmp_path / wnid, n=2, size=40).iterdir():
            folder.mkdir(exist_ok=True)
            p.rename(folder / f"{wnid}_{p.name}")
    files = list_images(folder, "folder", "even")
    assert len(files) == 4 and not any(f.name.startswith("n01443537") for f in files)
    assert len(list_images(folder, "folder", "odd")) == 2
    with pytest.raises(ValueError, match="'even' or 'odd'"):
        list_images(folder, "folder", "evens")

    dm = ImageDataModule(
        root=str(folder), classes="even", image_size=16, crop_scale=[0.2, 1.0], color_jitter=0.3,
        batch_size=2, num_workers=0, val_size=1,
    )  # fmt: skip
    dm.setup()
    ds = dm.train_set
    views = torch.stack([ds[0] for _ in range(6)])
    assert views.shape == (6, 3, 16, 16)
    assert (views - views[0]).abs().flatten(1).amax(1)[1:].min() > 0  # every view differs
    assert torch.equal(dm.val_set[0], dm.val_set[0])  # evaluation stays deterministic


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_checkpoint_cannot_run_code_and_bad_files_get_one_line(tmp_path):
    from genviz.generator import CheckpointError

    marker = tmp_path / "ran"
    evil = tmp_path / "evil.ckpt"
    torch.save({"hyper_parameters": {"decoder": {}}, "state_dict": {}, "x": _RunsCode(str(marker))}, evil)
    with pytest.raises(CheckpointError, match="refused"):
        decoder_from_checkpoint(str(evil))
    assert not marker.exists()
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"\x00not torch" * 50)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        decoder_from_checkpoint(str(garbage))
    tensor = tmp_path / "tensor.ckpt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(CheckpointError, match="not a dict"):
        decoder_from_checkpoint(str(tensor))
    bad_kwargs = tmp_path / "kwargs.ckpt"
    torch.save({"hyper_parameters": {"decoder": {"channels": [4], "bogus": 1}}, "state_dict": {}}, bad_kwargs)
    with pytest.raises(CheckpointError, match="does not load"):
        decoder_from_checkpoint(str(bad_kwargs))


def test_init_from_warm_starts_a_fine_tune_with_a_new_discriminator(tmp_path):
    first = tmp_path / "first"
    train(tiny_cfg(first, *TRUNK, "trainer.max_steps=3"))
    src = torch.load(first / "run" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]

    model = instantiate(tiny_cfg(tmp_path, *TRUNK, *ADVERSARIAL).dae)
    report = warm_start(model, str(first / "run" / "checkpoints" / "last.ckpt"))
    own = model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in src.items())  # decoder, head, code statistics
    assert report["missing"] and all(k.startswith("discriminator.") for k in report["missing"])

    # through train(): a fresh run starts at step 0 from those weights; the cosine spans the
    # batches (max_steps counts two optimizer steps per batch with a discriminator)
    second = tmp_path / "second"
    cfg = tiny_cfg(
        second, *TRUNK, *ADVERSARIAL, "trainer.max_steps=8", f"init_from={first}/run/checkpoints/last.ckpt"
    )
    cfg.dae.scheduler, cfg.dae.warmup_steps, cfg.dae.min_lr_ratio = "cosine", 0, 0.0
    train(cfg)
    ck = torch.load(second / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert ck["global_step"] == 8
    lr = ck["lr_schedulers"][0]["_last_lr"][0]
    assert lr == pytest.approx(0.0, abs=1e-9)  # 4 batches = the whole cosine, not half of it

    # a checkpoint of another shape: one clear error naming the cause
    other = instantiate(tiny_cfg(tmp_path, *TRUNK, "dae.decoder.code_channels=3").dae)
    with pytest.raises(CheckpointError, match="other shapes"):
        warm_start(other, str(first / "run" / "checkpoints" / "last.ckpt"))


def test_cosine_spans_the_batches_when_epochs_limit_an_adversarial_run(tmp_path):
    cfg = tiny_cfg(tmp_path, *TRUNK, *ADVERSARIAL, "trainer.max_steps=-1", "trainer.max_epochs=2")
    cfg.dae.scheduler, cfg.dae.warmup_steps, cfg.dae.min_lr_ratio = "cosine", 0, 0.0
    train(cfg)
    ck = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert ck["epoch"] >= 1 and ck["lr_schedulers"][0]["_last_lr"][0] == pytest.approx(0.0, abs=1e-9)
