"""train_dae.py under faults and bad inputs: best-*.ckpt next to
last.ckpt, atomic checkpoint writes, SIGINT/SIGTERM/SLURM checkpoints that ckpt_path=last finds,
a damaged last.ckpt, non-finite losses, and one-line errors (exit code 2) for bad inputs.
Tiny configs on the CPU (conftest's tiny_cfg): 16 images, 12 train / 4 val, 3 steps
per epoch."""

from __future__ import annotations

import csv
import os
import signal
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from conftest import ROOT, make_images, tiny_cfg
from PIL import Image

from genviz.dae.callbacks import AtomicCheckpointIO, TrainingInterrupted, atomic_torch_save
from genviz.dae.data import DataConfigError, DataRootError, ImageDataModule, _open_rgb
from genviz.dae.module import DAE, NonFiniteError
from genviz.dae.train import resolve_ckpt_path, run, train
from genviz.generator import CheckpointError, decoder_from_checkpoint


def _ckpts(tmp_path: Path) -> Path:
    return tmp_path / "run" / "checkpoints"


def _step(path: Path) -> int:
    return torch.load(path, weights_only=True, map_location="cpu")["global_step"]


def _logged_steps(tmp_path: Path, version: int) -> list[int]:
    rows = csv.DictReader(open(tmp_path / "run" / "csv" / f"version_{version}" / "metrics.csv"))
    return [int(r["step"]) for r in rows if r.get("train/loss")]


# ---------------------------------------------------------------- 1. best-*.ckpt
def test_best_and_last_checkpoints_with_default_callbacks(tmp_path):
    # 6 steps = 2 whole epochs, each ending with a validation: before the fix last.ckpt was
    # saved in on_validation_end, which made Lightning skip the top-k save of that step
    train(tiny_cfg(tmp_path, "trainer.max_steps=6"))
    ckpts = _ckpts(tmp_path)
    best = sorted(ckpts.glob("best-*.ckpt"))
    assert (ckpts / "last.ckpt").is_file() and best, sorted(p.name for p in ckpts.iterdir())
    assert _step(ckpts / "last.ckpt") == 6 and _step(best[0]) in (3, 6)
    assert best[0].name == f"best-{_step(best[0]):07d}.ckpt"  # docs/training.md: best-<step>.ckpt
    decoder_from_checkpoint(str(best[0]))  # a usable decoder


def test_last_follows_mid_epoch_validation_too(tmp_path):
    # validation twice per epoch: top-k and last are both saved at validation end
    train(tiny_cfg(tmp_path, "trainer.max_steps=6", "trainer.val_check_interval=0.5"))
    assert _step(_ckpts(tmp_path) / "last.ckpt") == 6 and list(_ckpts(tmp_path).glob("best-*.ckpt"))


# ---------------------------------------------------------------- 2. atomic writes
def test_checkpoints_are_written_beside_their_target_and_replaced_atomically(tmp_path, monkeypatch):
    elsewhere = tmp_path / "other-filesystem-tmp"
    elsewhere.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(elsewhere))  # TMPDIR on another filesystem
    replaced, synced = [], []
    real_replace, real_fsync = os.replace, os.fsync
    monkeypatch.setattr(
        os, "replace", lambda a, b: (replaced.append((Path(a), Path(b))), real_replace(a, b))[1]
    )
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])

    train(tiny_cfg(tmp_path, "trainer.max_steps=6"))
    ckpts = _ckpts(tmp_path)
    targets = {b.name for a, b in replaced if b.suffix == ".ckpt"}
    assert "last.ckpt" in targets and any(t.startswith("best-") for t in targets)
    assert all(a.parent == b.parent == ckpts for a, b in replaced if b.suffix == ".ckpt")
    assert synced, "checkpoint not fsynced"
    assert not list(elsewhere.iterdir()), "a checkpoint was staged in TMPDIR"
    assert not list(ckpts.glob("*.tmp")), "a temporary file was left behind"
    umask = os.umask(0o022)
    os.umask(umask)
    assert (ckpts / "last.ckpt").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_a_kill_during_a_checkpoint_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    atomic_torch_save({"global_step": 1, "state_dict": {"w": torch.ones(3)}}, path)
    good = path.read_bytes()

    class Killed(BaseException):
        pass

    def dies_half_way(obj, f):
        f.write(b"PK\x03\x04 half a zip")
        raise Killed

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(Killed):
        AtomicCheckpointIO().save_checkpoint({"global_step": 2, "state_dict": {"w": torch.zeros(3)}}, path)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # the temporary file is gone


# ---------------------------------------------------------------- 2. signals
class SimulatedKill(BaseException):
    """A death that runs nothing more of the training (like SIGKILL)."""


class SignalAt(pl.Callback):
    """Send ``signum`` to this process once, at the end of training step ``step``."""

    def __init__(self, step: int, signum: int):
        self.step, self.signum, self.sent = int(step), int(signum), False

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.step and not self.sent:
            self.sent = True
            os.kill(os.getpid(), self.signum)


class SigintTwiceAt(SignalAt):
    """Ctrl-C twice at the end of training step ``step`` (the second: stop at once)."""

    def __init__(self, step: int):
        super().__init__(step, int(signal.SIGINT))

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.step and not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)


class SlurmRequeueThenKillAt(pl.Callback):
    """At ``step``: what Lightning does on SLURM's SIGUSR1 (hpc_ckpt_*.ckpt, then requeue),
    then a SIGKILL-like death."""

    def __init__(self, step: int):
        self.step = int(step)

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.step:
            trainer._signal_connector._slurm_sigusr_handler_fn(signal.SIGUSR1, None)
            raise SimulatedKill


def _as_callback(cls_name: str, **kwargs) -> list[str]:
    over = [f"+callbacks.fault._target_={__name__}.{cls_name}"]
    return over + [f"+callbacks.fault.{k}={v}" for k, v in kwargs.items()]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_last_then_stops_and_resumes(tmp_path, signum, capsys):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    cfg = tiny_cfg(tmp_path, "trainer.max_steps=9", *_as_callback("SignalAt", step=4, signum=int(signum)))
    with pytest.raises(SystemExit) as exc:
        run(cfg)
    assert exc.value.code == 128 + signum
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and signal.Signals(signum).name in err[0] and "ckpt_path=last" in err[0]
    last = _ckpts(tmp_path) / "last.ckpt"
    assert _step(last) == 4  # the step the signal arrived in, not the epoch end at 3
    assert {s: signal.getsignal(s) for s in before} == before  # handlers restored

    train(tiny_cfg(tmp_path, "trainer.max_steps=7", "ckpt_path=last"))
    assert _step(last) == 7 and min(_logged_steps(tmp_path, 1)) >= 4


def test_train_raises_training_interrupted(tmp_path):
    cfg = tiny_cfg(
        tmp_path, "trainer.max_steps=9", *_as_callback("SignalAt", step=2, signum=int(signal.SIGINT))
    )
    with pytest.raises(TrainingInterrupted) as exc:
        train(cfg)
    assert exc.value.signum == signal.SIGINT and _step(_ckpts(tmp_path) / "last.ckpt") == 2


def test_second_ctrl_c_stops_at_once_in_one_line(tmp_path, capsys):
    cfg = tiny_cfg(tmp_path, "trainer.max_steps=9", *_as_callback("SigintTwiceAt", step=2))
    with pytest.raises(SystemExit) as exc:
        run(cfg)
    assert exc.value.code == 128 + signal.SIGINT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "second Ctrl-C" in err[0] and "Traceback" not in err[0], err


def test_slurm_requeue_checkpoint_is_found_by_ckpt_path_last(tmp_path, monkeypatch):
    from pytorch_lightning.trainer.connectors import signal_connector

    requeued = []
    monkeypatch.setattr(signal_connector, "call", lambda cmd, **kw: requeued.append(cmd) or 0)
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    cfg = tiny_cfg(tmp_path, "trainer.max_steps=9", *_as_callback("SlurmRequeueThenKillAt", step=4))
    with pytest.raises(SimulatedKill):
        train(cfg)
    assert requeued == [["scontrol", "requeue", "4242"]]
    hpc = tmp_path / "run" / "hpc_ckpt_1.ckpt"
    assert _step(hpc) == 4 and _step(_ckpts(tmp_path) / "last.ckpt") == 3
    assert resolve_ckpt_path("last", str(tmp_path / "run")) == str(hpc)

    monkeypatch.delenv("SLURM_JOB_ID")
    train(tiny_cfg(tmp_path, "trainer.max_steps=6", "ckpt_path=last"))
    assert min(_logged_steps(tmp_path, 1)) >= 4 and _step(_ckpts(tmp_path) / "last.ckpt") == 6


# ---------------------------------------------------------------- 2. damaged last.ckpt
def test_truncated_last_falls_back_to_newest_readable_checkpoint(tmp_path):
    train(tiny_cfg(tmp_path, "trainer.max_steps=6"))
    ckpts = _ckpts(tmp_path)
    last = ckpts / "last.ckpt"
    (best,) = ckpts.glob("best-*.ckpt")
    best_step = _step(best)
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])  # a kill during a non-atomic copy

    with pytest.warns(UserWarning, match=r"damaged"):
        path = resolve_ckpt_path("last", str(tmp_path / "run"))
    assert path == str(best)
    assert (ckpts / "last.ckpt.damaged").is_file() and not last.exists()

    last.write_bytes(data[: len(data) // 2])  # damaged again: now through train()
    (ckpts / "last.ckpt.damaged").unlink()
    with pytest.warns(UserWarning, match=r"resuming from .*best-"):
        train(tiny_cfg(tmp_path, "trainer.max_steps=8", "ckpt_path=last"))
    assert _step(last) == 8 and min(_logged_steps(tmp_path, 1)) >= best_step


def test_only_damaged_checkpoints_is_a_clear_error(tmp_path):
    ckpts = _ckpts(tmp_path)
    ckpts.mkdir(parents=True)
    (ckpts / "last.ckpt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match="none of the 1 checkpoints"):
        resolve_ckpt_path("last", str(tmp_path / "run"))


# ---------------------------------------------------------------- 3. non-finite losses
def test_nan_loss_stops_training_and_keeps_the_good_checkpoints(tmp_path, monkeypatch):
    train(tiny_cfg(tmp_path, "trainer.max_steps=3"))
    ckpts = _ckpts(tmp_path)
    before = {p.name: p.read_bytes() for p in ckpts.iterdir()}
    assert "last.ckpt" in before

    real = DAE.compute_loss

    def nan_loss(self, recon, target):
        out = real(self, recon, target)
        out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(DAE, "compute_loss", nan_loss)
    with pytest.raises(NonFiniteError, match=r"training loss is nan at step 3"):
        train(tiny_cfg(tmp_path, "trainer.max_steps=9", "ckpt_path=last"))
    assert {p.name: p.read_bytes() for p in ckpts.iterdir()} == before


def test_huge_lr_is_exit_code_2_and_writes_no_nan_checkpoint(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run(tiny_cfg(tmp_path, "trainer.max_steps=9", "dae.lr=1e30"))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "training loss is nan" in err and "dae.lr" in err
    for p in _ckpts(tmp_path).glob("*.ckpt") if _ckpts(tmp_path).exists() else []:
        state = torch.load(p, weights_only=True)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()), p


def test_nonfinite_weights_are_never_written(tmp_path):
    path = tmp_path / "last.ckpt"
    with pytest.raises(NonFiniteError, match="1 of 2 weight tensors are NaN/inf at step 7"):
        AtomicCheckpointIO().save_checkpoint(
            {"global_step": 7, "state_dict": {"a": torch.ones(2), "b": torch.tensor([1.0, float("nan")])}},
            path,
        )
    assert not path.exists()


# ---------------------------------------------------------------- 4. bad inputs
def _garbage(tmp_path: Path) -> str:
    p = tmp_path / "garbage.ckpt"
    p.write_bytes(os.urandom(2000))
    return str(p)


def _tensor_file(tmp_path: Path) -> str:
    p = tmp_path / "tensor.ckpt"
    torch.save(torch.zeros(3), p)
    return str(p)


def _decoder_only(tmp_path: Path) -> str:
    p = tmp_path / "decoder.ckpt"
    torch.save({"hyper_parameters": {"decoder": {}}, "state_dict": {"decoder.x": torch.zeros(1)}}, p)
    return str(p)


def _one_image(tmp_path: Path) -> str:
    folder = tmp_path / "one"
    folder.mkdir()
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(folder / "a.png")
    return str(folder)


BAD_INPUTS = {
    "batch_size=0": (lambda t: ["data.batch_size=0"], r"data\.batch_size must be an integer >= 1, got 0"),
    "batch_size=abc": (
        lambda t: ["data.batch_size=abc"],
        r"data\.batch_size must be an integer >= 1, got 'abc'",
    ),
    "batch_size=-3": (lambda t: ["data.batch_size=-3"], r"data\.batch_size must be an integer >= 1, got -3"),
    "num_workers=-1": (lambda t: ["data.num_workers=-1"], r"data\.num_workers must be an integer >= 0"),
    "val_fraction=1.5": (lambda t: ["data.val_fraction=1.5", "data.val_size=null"], r"data\.val_fraction"),
    "layout=bogus": (lambda t: ["data.layout=bogus"], r"data\.layout must be"),
    "dae.loss=bogus": (lambda t: ["dae.loss=bogus"], r"dae: dae loss must be one of"),
    "garbage ckpt_path": (
        lambda t: [f"ckpt_path={_garbage(t)}"],
        r"garbage\.ckpt: not a readable checkpoint",
    ),
    "tensor ckpt_path": (
        lambda t: [f"ckpt_path={_tensor_file(t)}"],
        r"tensor\.ckpt is not a genviz DAE checkpoint",
    ),
    "decoder-only ckpt_path": (
        lambda t: [f"ckpt_path={_decoder_only(t)}"],
        r"not a train_dae\.py training checkpoint .*init_from",
    ),
    "missing ckpt_path": (
        lambda t: [f"ckpt_path={t / 'nope.ckpt'}"],
        r"ckpt_path .*nope\.ckpt.* is not a file",
    ),
    "classes out of range": (lambda t: ["data.classes=[1500]"], r"data\.classes: \[1500\] out of range"),
    "one image": (lambda t: [f"data.root={_one_image(t)}"], r"only 1 readable image .* at least 2"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_error_exit_2(tmp_path, case, capsys):
    overrides, message = BAD_INPUTS[case]
    with pytest.raises(SystemExit) as exc:
        run(tiny_cfg(tmp_path, "trainer.max_steps=2", *overrides(tmp_path)))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("train_dae: error: ") and "\n" not in err and "Traceback" not in err, err
    import re

    assert re.search(message, err), err


def test_resume_with_another_dae_config_names_the_shapes(tmp_path):
    train(tiny_cfg(tmp_path, "trainer.max_steps=3"))
    with pytest.raises(CheckpointError, match=r"ckpt_path .*last\.ckpt: \d+ tensors have other shapes"):
        train(tiny_cfg(tmp_path, "dae.decoder.channels=[8,8,4]", "ckpt_path=last"))


def test_data_config_errors_without_hydra():
    with pytest.raises(DataConfigError, match=r"data\.batch_size .* got 0"):
        ImageDataModule(root="/x", batch_size=0)
    with pytest.raises(DataConfigError, match=r"data\.val_size .* got 0"):
        ImageDataModule(root="/x", val_size=0)


def test_single_image_folder_is_refused(tmp_path):
    with pytest.raises(DataRootError, match="only 1 readable image"):
        ImageDataModule(root=_one_image(tmp_path), image_size=16).setup()
    # two images: one trains, one validates, never the same
    folder = make_images(tmp_path / "two", n=2)
    dm = ImageDataModule(root=str(folder), image_size=16, val_size=1)
    train, val = dm.split()
    assert len(train) == len(val) == 1 and train != val


def _png16(path: Path, pixels: np.ndarray) -> Path:
    """A 16-bit PNG written by hand (PIL cannot write 16-bit RGB)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    h, w = pixels.shape[:2]
    color = {1: 0, 3: 2}[1 if pixels.ndim == 2 else pixels.shape[2]]
    raw = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, color, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )
    return path


def test_16bit_pngs_load_in_the_8bit_range(tmp_path):
    gray = _png16(tmp_path / "gray16.png", np.full((8, 8), 32768, np.uint16))
    rgb = np.zeros((8, 8, 3), np.uint16)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 65535, 32768, 0
    rgb = _png16(tmp_path / "rgb16.png", rgb)
    assert Image.open(gray).mode.startswith("I")  # the case PIL's convert("RGB") clips to white
    assert np.asarray(_open_rgb(gray))[0, 0].tolist() == [128, 128, 128]
    assert np.asarray(_open_rgb(rgb))[0, 0].tolist() == [255, 128, 0]
    # through the data module: mid-gray, not white
    dm = ImageDataModule(root=str(tmp_path), image_size=8, val_size=1, num_workers=0)
    dm.setup()
    items = [dm.train_set[0], dm.val_set[0]]
    assert any(abs(float(x.mean()) - 0.5) < 0.01 for x in items)
    assert all(float(x.min()) < 0.9 for x in items)


def test_logger_none_trains_without_lr_monitor(tmp_path):
    metrics = train(tiny_cfg(tmp_path, "logger=none", "trainer.max_steps=3"))
    assert np.isfinite(metrics["train/loss"])


def test_cli_batch_size_0_exits_2_with_one_line(tmp_path):
    images = make_images(tmp_path / "images")
    r = subprocess.run(
        [
            sys.executable,
            "train_dae.py",
            "dae=cpu_small",
            "data=folder",
            f"data.root={images}",
            "data.batch_size=0",
            "trainer=cpu",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "HYDRA_FULL_ERROR": "1", "OMP_NUM_THREADS": "1"},
        timeout=180,
    )
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert lines[-1] == "train_dae: error: data.batch_size must be an integer >= 1, got 0"
    assert "Traceback" not in r.stderr and sum("error" in line for line in lines) == 1
