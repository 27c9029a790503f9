"""End-to-end: the visualize.py command as a user runs it."""

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT


def run(args, tmp_path, env=None):
    return subprocess.run(
        [sys.executable, "visualize.py", *args, f"hydra.run.dir={tmp_path}", "progress=false"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **(env or {})},
    )


def test_tiny_run_writes_images_grid_results_and_config(tmp_path):
    p = run(
        ["classifier=tiny", "generator=tiny", "target=[class:1,channel:relu2:0]", "generator.steps=5"],
        tmp_path,
    )
    assert p.returncode == 0, p.stderr
    res = json.loads((tmp_path / "results.json").read_text())
    assert [r["target"] for r in res["results"]] == ["class:1", "channel:relu2:0"]
    for r in res["results"]:
        assert (tmp_path / r["image"]).is_file() and r["steps"] == 5 and r["seed"] == 0
    assert res["results"][0]["rank"] >= 1 and 0 <= res["results"][0]["prob"] <= 1
    assert res["config"]["generator"]["steps"] == 5
    assert (tmp_path / "grid.png").is_file() and (tmp_path / ".hydra" / "config.yaml").is_file()


@pytest.mark.parametrize(
    "args,message",
    [
        (["classifier=efficientnet_lite0", "target=class:mosqe"], "did you mean"),
        (["classifier=tiny", "target=channel:relu7:1"], "Named layers"),
        (["classifier=tiny", "target=banana"], "expected one of"),
        (
            [
                "classifier=tiny",
                "generator=dae",
                "generator.param.checkpoint=/nonexistent/dae.ckpt",
                "target=class:1",
            ],
            "train_dae.py",
        ),
        (
            ["classifier=tiny", "generator=dae", "generator.param.checkpoint=GARBAGE", "target=class:1"],
            "not a readable checkpoint",
        ),
        (["classifier=tiny", "method=fourier", "generator=dae", "target=class:1"], "ignores the generator"),
        (["classifier=tiny", "method=pixel", "generator.steps=5", "target=class:1"], "method.steps"),
    ],
)
def test_user_errors_are_one_message_not_a_traceback(tmp_path, args, message):
    args = [a.replace("GARBAGE", str(tmp_path / "garbage.ckpt")) for a in args]
    (tmp_path / "garbage.ckpt").write_bytes(b"not a torch file" * 10)
    p = run([*args, "generator.steps=1"], tmp_path)
    assert p.returncode == 2
    assert message in p.stderr and "Traceback" not in p.stderr


def test_vgg16_offline_names_the_remedies(tmp_path):
    p = run(["target=class:mosque"], tmp_path, env={"TORCH_HOME": str(tmp_path / "torch")})
    if p.returncode == 0:
        pytest.skip("VGG16 weights were downloaded: this machine is online")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    for remedy in ("hub/checkpoints/vgg16-397923af.pth", "classifier.weights_path", "efficientnet_lite0"):
        assert remedy in p.stderr


@pytest.mark.slow
def test_efficientnet_lite0_end_to_end_reaches_top1(tmp_path):
    p = run(
        [
            "classifier=efficientnet_lite0",
            "generator=untrained_small",
            "target=[class:goldfish]",
            "generator.steps=100",
            "generator.optimizer.lr=0.01",
        ],
        tmp_path,
    )
    assert p.returncode == 0, p.stderr
    r = json.loads((tmp_path / "results.json").read_text())["results"][0]
    assert r["status"] == "ok" and r["rank"] == 1, r
