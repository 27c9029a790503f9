"""Package a train_dae.py checkpoint's decoder as the one genviz ships.

    python benchmarks/ship_decoder.py runs/trunk_lite0-val1k_even/checkpoints/last.ckpt

Writes genviz/weights/dae_trunk_lite0.pt: only what ``decoder_from_checkpoint`` reads (the
decoder kwargs, the ``decoder.*`` weights and the code statistics; no encoder, optimizer or
loop state), loadable with ``weights_only=True``; and its record
benchmarks/results/dae_trunk_lite0.json (source, step, size, sha256, and the training data: its
folders and the WordNet id of every class it holds, listed again from the run's config.yaml), which
tests/test_shipped_decoder.py checks the shipped file against (every class of even index).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genviz.generator import SHIPPED_DECODER, decoder_from_checkpoint  # noqa: E402

KEEP = ("code_mean", "code_std", "code_count")


def strip(src: str, dst: Path) -> tuple[str, dict]:
    """Write the stripped checkpoint to ``dst``; return its sha256 and what it holds."""
    ckpt = torch.load(src, map_location="cpu", weights_only=True)
    hp = ckpt["hyper_parameters"]
    state = {k: v.clone() for k, v in ckpt["state_dict"].items() if k.startswith("decoder.") or k in KEEP}
    out = {
        "hyper_parameters": {
            "decoder": hp["decoder"],
            "trained_with": {k: v for k, v in hp.items() if k != "decoder"},
        },
        "state_dict": state,
        "global_step": ckpt.get("global_step"),
    }
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(out, dst)
    decoder_from_checkpoint(str(dst))  # it loads
    return hashlib.sha256(dst.read_bytes()).hexdigest(), out


def training_data(checkpoint: str, config: str | None) -> dict | None:
    """The run's data (``<run>/config.yaml`` beside ``checkpoints/``, or ``config``): folders,
    class filter, number of photos and the sorted WordNet ids of their classes."""
    from omegaconf import OmegaConf

    from genviz.dae.data import list_images, wnid_of

    path = Path(config) if config else Path(checkpoint).resolve().parent.parent / "config.yaml"
    if not path.is_file():
        print(f"no run config at {path}: the record lists no training data (pass --data-config)")
        return None
    data = OmegaConf.load(path).data
    roots = [data.root] if isinstance(data.root, str) else list(data.root)
    files = [f for r in roots for f in list_images(r, data.layout, data.get("classes"), data.get("subdir"))]
    return {
        "config": str(path),
        "roots": roots,
        "classes": data.get("classes"),
        "photos": len(files),
        "wnids": sorted({wnid_of(f) for f in files}),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--out", default=str(SHIPPED_DECODER))
    ap.add_argument("--record", default=str(ROOT / "benchmarks/results/dae_trunk_lite0.json"))
    ap.add_argument("--data-config", default=None, help="default: the run's config.yaml")
    ap.add_argument(
        "--fine-tuned-from",
        default=None,
        help="what the run started from (init_from), in words, for the record",
    )
    args = ap.parse_args(argv)
    dst = Path(args.out)
    digest, ck = strip(args.checkpoint, dst)
    record = {
        "file": str(dst.relative_to(ROOT)) if dst.is_relative_to(ROOT) else str(dst),
        "sha256": digest,
        "bytes": dst.stat().st_size,
        "source_checkpoint": args.checkpoint,
        "global_step": ck["global_step"],
        "decoder": ck["hyper_parameters"]["decoder"],
        "trained_with": ck["hyper_parameters"]["trained_with"],
        "training_data": training_data(args.checkpoint, args.data_config),
    }
    if args.fine_tuned_from:
        record["fine_tuned_from"] = {"checkpoint": args.fine_tuned_from, "via": "train_dae.py init_from="}
    Path(args.record).write_text(json.dumps(record, indent=2) + "\n")
    print(f"{dst}  {dst.stat().st_size / 1e6:.2f} MB  sha256 {digest}  (record: {args.record})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
