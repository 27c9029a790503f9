"""Codes of real photos, and the code prior trained on them (:mod:`genviz.code_prior`).

    python -m genviz.dae.codes runs/prior64-even43k/checkpoints/last.ckpt --data even43k
    python -m genviz.dae.codes benchmarks/checkpoints/dae_trunk_lite0_even43k_stage7_weights.pt \\
        --data val1k_even --views 4 --bank 256 --bank-photos sharp \\
        --out genviz/weights/dae_trunk_lite0.code_prior.pt \\
        --data-override "data.root=[../shared/data/imagenet-val-1k,../shared/data/nips17-dev/even]"

The training photos of the data config (``conf/data/<name>.yaml``, at the DAE's image size) are
encoded, without noise, ``--views`` times under the config's training augmentation (random
crops, flips, colour jitter where the config has it; full batches, so up to a batch of photos
is left out of each pass); the code prior is trained on those codes and written to ``--out`` (default:
``<checkpoint stem>.code_prior.pt`` beside the checkpoint, where ``generator=dae_fast`` finds it
for ``generator.param.checkpoint=<checkpoint>``).  Only the photos of the data config are read:
keep it to even-index classes for a decoder measured on the odd ones.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from genviz import code_prior
from genviz.dae.module import load_dae
from genviz.generator import from_pixels

REPO = Path(__file__).resolve().parents[2]


def data_module(data: str, image_size: int, batch_size: int = 64, overrides=()):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            "train_dae",
            overrides=[f"data={data}", f"data.batch_size={batch_size}", "name=codes", *overrides],
        )
    cfg.data.image_size = image_size
    if int(cfg.data.get("resize") or 0) < image_size:  # the config's resize is for smaller images
        cfg.data.resize = round(image_size * 256 / 224)
    dm = instantiate(cfg.data)
    dm.setup("fit")
    return dm


@torch.no_grad()
def encode(model, loader, views: int = 1, progress: bool = True) -> torch.Tensor:
    """Codes [N * views, n] of every batch of ``loader`` (noise-free), ``views`` passes."""
    out = []
    total = views * len(loader)
    with tqdm(total=total, desc="encoding photos", disable=not progress) as bar:
        for _ in range(views):
            for batch in loader:
                pixels = batch[0] if isinstance(batch, list | tuple) else batch
                out.append(model.encoder(from_pixels(pixels)).float())
                bar.update()
    return torch.cat(out)


@torch.no_grad()
def sharp_codes(model, dm, batch_size: int = 64) -> tuple[torch.Tensor, list[str]]:
    """Codes of the training photos at least the DAE's size (centre crop, no noise), one per
    photo, and the WordNet id of each: the candidates of a bank that covers classes."""
    from torch.utils.data import DataLoader

    from genviz.dae.data import ImageFiles, is_sharp, wnid_of

    size = int(model.hparams.image_size)
    files = [p for p in dm.train_set.files if is_sharp(p, size)]
    if not files:
        raise SystemExit(f"--bank-photos sharp: no training photo of at least {size} px")
    ds = ImageFiles(files, dm.transforms(False), dm.resize)
    return encode(model, DataLoader(ds, batch_size=batch_size), progress=False), [wnid_of(p) for p in files]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="a train_dae.py checkpoint (or a *_weights.pt file) with its encoder")
    ap.add_argument("--data", default="even43k", help="a conf/data config: the photos to encode")
    ap.add_argument("--views", type=int, default=1, help="augmented passes over the photos")
    ap.add_argument("--out", default=None, help="default: <checkpoint stem>.code_prior.pt beside it")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--noise", type=float, default=0.5, help="training noise, in standard deviations")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--bank", type=int, default=256, help="real codes kept for generator.param.alpha.init=bank starts"
    )
    ap.add_argument(
        "--bank-photos",
        choices=("train", "sharp"),
        default="train",
        help="train: the bank is a draw of the training codes; sharp: one code per photo of at least "
        "the DAE's size (centre crop), spread over as many classes as --bank allows, each code's "
        "class kept with it",
    )
    ap.add_argument("--data-override", action="append", default=[], help="e.g. data.max_images=1000")
    ap.add_argument(
        "--codes", default=None, help="a file of codes: read it if it exists (no encoding), else write it"
    )
    args = ap.parse_args(argv)
    for key in ("views", "hidden", "steps"):
        if getattr(args, key) < 1:
            ap.error(f"--{key} must be >= 1, got {getattr(args, key)}")
    if not args.noise > 0:
        ap.error(f"--noise must be > 0, got {args.noise}")
    try:
        model = load_dae(args.checkpoint)
    except Exception as e:  # not a torch file, no hyper-parameters, another model's weights
        ap.error(f"{args.checkpoint}: not a DAE checkpoint with its encoder ({str(e).splitlines()[0][:200]})")
    torch.manual_seed(args.seed)
    made_by = {
        "decoder": code_prior.fingerprint(model.decoder),
        "data": args.data,
        "views": args.views,
        "data_override": list(args.data_override),
        "bank_photos": args.bank_photos,
    }
    bank_codes = bank_labels = None
    if args.codes and Path(args.codes).is_file():
        try:
            d = torch.load(args.codes, map_location="cpu", weights_only=True)
            codes, held, theirs = d["train"], d["held_out"], d.get("made_by")
            bank_codes, bank_labels = d.get("bank_codes"), d.get("bank_labels")
        except Exception as e:
            ap.error(f"--codes {args.codes}: not a codes file of this tool ({type(e).__name__}: {e})")
        if theirs != made_by:
            ap.error(
                f"--codes {args.codes} holds codes made by {theirs}, not by this checkpoint, data and views "
                f"({made_by}): remove it or name another file"
            )
        print(f"{len(codes)} codes from {args.codes}")
    else:
        from genviz.dae.data import DataConfigError, DataRootError

        try:
            dm = data_module(args.data, int(model.hparams.image_size), overrides=args.data_override)
        except (DataRootError, DataConfigError) as e:
            ap.error(str(e))
        except Exception as e:  # an unknown data config or override (Hydra's errors)
            ap.error(f"--data {args.data} / --data-override: {str(e).splitlines()[0]}")
        t0 = time.perf_counter()
        codes = encode(model, dm.train_dataloader(), args.views)
        held = encode(model, dm.val_dataloader(), 1, progress=False)
        took = time.perf_counter() - t0
        print(f"{len(codes)} codes of {len(dm.train_set)} photos ({args.views} views) in {took:.0f} s")
        if args.bank_photos == "sharp":
            bank_codes, bank_labels = sharp_codes(model, dm)
            print(f"{len(bank_codes)} bank candidates: photos of {len(set(bank_labels))} classes")
        if args.codes:
            from genviz.atomic import atomic_path

            with atomic_path(Path(args.codes)) as tmp:
                torch.save(
                    {
                        "train": codes,
                        "held_out": held,
                        "made_by": made_by,
                        "bank_codes": bank_codes,
                        "bank_labels": bank_labels,
                    },
                    tmp,
                )
    dec = model.decoder
    prior, curve = code_prior.fit(
        codes,
        dec.code_channels,
        dec.code_size,
        args.hidden,
        args.noise,
        args.steps,
        bank=args.bank,
        bank_codes=bank_codes,
        bank_labels=bank_labels,
        seed=args.seed,
        progress=True,
    )
    random = prior.mean + prior.std * torch.randn(
        len(held), prior.code_dim, generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        e_held, e_rand = prior.energy(held).median(), prior.energy(random).median()
    print(
        f"denoising loss every 100 steps: {' '.join(f'{v:.3f}' for v in curve)}\n"
        f"energy median: held-out photos' codes {e_held:.4f}, independent draws from the code statistics {e_rand:.4f}"
    )
    out = Path(args.out) if args.out else Path(args.checkpoint).with_suffix(".code_prior.pt")
    code_prior.save(prior, out, decoder=made_by["decoder"])
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
