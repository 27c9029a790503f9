"""The denoising autoencoder whose decoder becomes the generator prior (paper section 4.2).

Images arrive as [0, 1] RGB.  Gaussian noise of std ``noise_std`` (in [0, 1] pixel
units) is added to the input, both are standardized with :func:`from_pixels`, the
encoder maps the noisy image to a ``decoder.code_dim`` code and the decoder
reconstructs the clean, standardized image.

Losses (``loss=``):

- ``paper``: MSE against the clean image (the paper).  MSE blurs (the paper says so).
- ``mse+fft``: MSE + ``hf_weight`` x the L1 distance of the amplitude spectra,
  weighted by radial frequency.  Blur removes high-frequency energy; this term
  asks for the right amount of it without asking for it at exactly the right
  place (which is what MSE averages away).
- ``mse+grad``: MSE + ``hf_weight`` x L1 of the differences of image gradients.

Recipes beyond the paper (each off by default, so ``dae=paper`` is the paper):

- ``encoder.kind=trunk``: a frozen pretrained classifier trunk + a small trainable head
  (:mod:`genviz.dae.encoders`).
- ``perceptual.weight > 0``: + weight x the distance of a frozen classifier's features at
  ``perceptual.layers`` between reconstruction and clean image, each divided by the clean
  image's mean square (Dosovitskiy & Brox 2016).  ``mse_weight`` scales the pixel MSE.
- ``adversarial.weight > 0``: + weight x a hinge GAN loss from a small patch discriminator
  (:class:`genviz.dae.discriminator.PatchDiscriminator`), trained in the same step with its own
  optimizer (Lightning manual optimization; the gradient clipping moves into the module).
- ``lowres_size``: with a data module that marks each photo sharp or not (``data.native=true``),
  the reconstruction, perceptual and adversarial terms see a photo smaller than the training
  size (a 64 px tiny-imagenet photo upsampled to 128) and its reconstruction both brought down to
  ``lowres_size`` px and back: the decoder is asked for the detail a photo has, not for the blur
  of its upsampling (a learned upsampler taught by the few large photos).  With
  ``adversarial.reals=sharp`` the discriminator's reals are the sharp photos only and its fakes
  every reconstruction at full size, so the decoder is asked for a large photo's detail from every
  code (with ``reals=all`` it also learns that an upsampled photo's blur is real).
- Code statistics: the per-dimension mean and standard deviation of the training codes
  (an exponential moving average) are buffers ``code_mean`` / ``code_std``, saved in every
  checkpoint; ``visualize.py`` can start from them and keep the optimized code in their range.

Checkpoint contract (read by :func:`genviz.generator.decoder_from_checkpoint`):
``hyper_parameters["decoder"]`` is a plain dict of Decoder kwargs and the decoder
weights are under ``decoder.*``.
"""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from genviz.dae.discriminator import PatchDiscriminator, hinge_d_loss
from genviz.dae.encoders import build_encoder, frozen_features
from genviz.dae.trunk import normalized_distance
from genviz.generator import Decoder, from_pixels, to_pixels

LOSSES = ("paper", "mse+fft", "mse+grad")


class NonFiniteError(FloatingPointError):
    """A training loss or the weights became NaN/inf: training stops, and no checkpoint is
    written from that state (see :class:`genviz.dae.callbacks.Checkpoint`)."""


def _plain(x):
    """DictConfig/ListConfig/tuple -> plain dict/list (checkpoints stay omegaconf-free)."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(x, DictConfig | ListConfig):
            return OmegaConf.to_container(x, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


def fft_amplitude_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean |(|F pred| - |F target|)| weighted by radial frequency (0 at DC, 1 at Nyquist)."""
    h, w = pred.shape[-2:]
    fp = torch.fft.rfft2(pred.float(), norm="ortho").abs()
    ft = torch.fft.rfft2(target.float(), norm="ortho").abs()
    fy = torch.fft.fftfreq(h, device=pred.device).abs().view(-1, 1)
    fx = torch.fft.rfftfreq(w, device=pred.device).view(1, -1)
    weight = torch.sqrt(fy**2 + fx**2) / math.sqrt(0.5)
    return ((fp - ft).abs() * weight).mean()


def gradient_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    def grads(x):
        return x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]

    (py, px), (ty, tx) = grads(pred), grads(target)
    return (py - ty).abs().mean() + (px - tx).abs().mean()


def psnr(pred_pixels: torch.Tensor, target_pixels: torch.Tensor) -> torch.Tensor:
    """Mean per-image PSNR (dB) of [0, 1] images; pred is clamped to [0, 1]."""
    mse = (pred_pixels.clamp(0, 1) - target_pixels).pow(2).flatten(1).mean(1)
    return (10 * torch.log10(1.0 / mse.clamp_min(1e-10))).mean()


class DAE(pl.LightningModule):
    def __init__(
        self,
        decoder: dict | None = None,
        encoder: dict | None = None,
        image_size: int = 224,
        noise_std: float = 0.1,
        loss: str = "paper",
        hf_weight: float = 0.1,
        optimizer: str = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        scheduler: str = "cosine",
        warmup_steps: int = 0,
        min_lr_ratio: float = 0.01,
        step_size: int = 1000,
        gamma: float = 0.5,
        mse_weight: float = 1.0,
        perceptual: dict | None = None,
        adversarial: dict | None = None,
        code_stats_momentum: float = 0.01,
        lowres_size: int | None = None,
    ):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"dae loss must be one of {LOSSES}, got {loss!r}")
        decoder, encoder = _plain(decoder or {}), _plain(encoder or {})
        perceptual = {
            "weight": 0.0,
            "classifier": "efficientnet_lite0",
            "layers": [],
            **_plain(perceptual or {}),
        }
        adversarial = {
            "weight": 0.0,
            "channels": 32,
            "lr": 2e-4,
            "depth": 3,
            "reals": "all",
            **_plain(adversarial or {}),
        }
        if adversarial["reals"] not in ("all", "sharp"):
            raise ValueError(f"dae.adversarial.reals must be 'all' or 'sharp', got {adversarial['reals']!r}")
        if "channels" in decoder:
            decoder["channels"] = [int(c) for c in decoder["channels"]]
        self.save_hyperparameters()  # picks up the plain dicts above
        self.decoder = Decoder(**decoder)
        out = self.decoder.output_size()
        if out != image_size:
            raise ValueError(
                f"decoder {decoder} outputs {out} px but image_size={image_size}; with layout='same' "
                "the output is code_size * 2**len(channels)"
            )
        frozen: dict = {}  # frozen networks by name, shared by the encoder trunk and the perceptual loss
        self.encoder = build_encoder(
            encoder, image_size, self.decoder.code_channels, self.decoder.code_size, frozen
        )
        self.perceptual = None
        if float(perceptual["weight"]) > 0:
            self.perceptual = frozen_features(perceptual["classifier"], frozen)
            self.perceptual_layers = self.perceptual.check(perceptual["layers"])
        self.discriminator = None
        if float(adversarial["weight"]) > 0:
            self.discriminator = PatchDiscriminator(int(adversarial["channels"]), int(adversarial["depth"]))
            self.automatic_optimization = False
        self.grad_clip: float | None = None  # manual optimization clips here (set by genviz.dae.train)
        n = self.decoder.code_dim
        self.register_buffer("code_mean", torch.zeros(n))
        self.register_buffer("code_std", torch.ones(n))
        self.register_buffer("code_count", torch.zeros((), dtype=torch.long))

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Checkpoints written before the code statistics existed still resume."""
        state = checkpoint.get("state_dict", {})
        for k in ("code_mean", "code_std", "code_count"):
            state.setdefault(k, getattr(self, k).clone())

    # ------------------------------------------------------------------ model
    def forward(self, x_std: torch.Tensor) -> torch.Tensor:
        """Standardized image -> reconstructed standardized image."""
        return self.decoder(self.encoder(x_std))

    def add_noise(self, pixels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.hparams.noise_std <= 0:
            return pixels
        noise = torch.randn(pixels.shape, generator=generator, device=pixels.device, dtype=pixels.dtype)
        return pixels + self.hparams.noise_std * noise

    def reconstruct(self, pixels: torch.Tensor, generator: torch.Generator | None = None):
        """[0,1] images -> (noisy pixels, reconstructed pixels), for grids and benchmarks."""
        noisy = self.add_noise(pixels, generator)
        return noisy, to_pixels(self(from_pixels(noisy)))

    def at_native(self, x: torch.Tensor, sharp: torch.Tensor | None) -> torch.Tensor:
        """Standardized images, those not ``sharp`` brought down to ``lowres_size`` px and back up
        (no host sync: both are computed and picked per image)."""
        size = self.hparams.get("lowres_size")
        if sharp is None or not size:
            return x
        small = F.interpolate(
            F.interpolate(x, size=int(size), mode="area"), size=x.shape[-2:], mode="bilinear"
        )
        return torch.where(sharp.view(-1, 1, 1, 1), x, small)

    def compute_loss(self, recon: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        hp = self.hparams
        mse = F.mse_loss(recon, target)
        out = {"mse": mse}
        loss = hp.mse_weight * mse
        if hp.loss == "mse+fft":
            out["hf"] = fft_amplitude_l1(recon, target)
        elif hp.loss == "mse+grad":
            out["hf"] = gradient_l1(recon, target)
        if "hf" in out:
            loss = loss + hp.hf_weight * out["hf"]
        if self.perceptual is not None:
            layers = self.perceptual_layers
            fr = self.perceptual(to_pixels(recon), layers)
            with torch.no_grad():
                ft = self.perceptual(to_pixels(target), layers)
            out["perceptual"] = sum(normalized_distance(fr[k], ft[k]) for k in layers) / len(layers)
            loss = loss + hp.perceptual["weight"] * out["perceptual"]
        out["loss"] = loss
        return out

    @torch.no_grad()
    def update_code_stats(self, code: torch.Tensor) -> None:
        """Exponential moving average of the per-dimension code mean and standard deviation."""
        code = code.detach().float()
        mean, std = code.mean(0), code.std(0, unbiased=False) if len(code) > 1 else torch.zeros_like(code[0])
        # the first batch sets the statistics; a tensor condition, so no device-host sync per step
        m = torch.where(self.code_count == 0, 1.0, float(self.hparams.code_stats_momentum))
        # mix second moments so that the spread between batch means is kept
        second = (self.code_std**2 + self.code_mean**2).lerp(std**2 + mean**2, m)
        self.code_mean.lerp_(mean, m)
        self.code_std.copy_((second - self.code_mean**2).clamp_min(0).sqrt())
        self.code_count += len(code)

    def _step(self, batch, train: bool = False):
        """-> (pixels, reconstruction, its loss terms, the pair the discriminator sees, the weight of
        each photo as a real one for the discriminator, or None for all)."""
        pixels, sharp = batch, None
        if isinstance(batch, list | tuple):  # (pixels,), (pixels, labels) or (pixels, sharp)
            pixels = batch[0]
            if len(batch) == 2 and batch[1].dtype == torch.bool:
                sharp = batch[1]
        target = from_pixels(pixels)
        code = self.encoder(from_pixels(self.add_noise(pixels)))
        if train:
            self.update_code_stats(code)
        recon = self.decoder(code)
        seen = self.at_native(recon, sharp), self.at_native(target, sharp)
        losses = self.compute_loss(*seen)
        if sharp is not None and self.hparams.adversarial["reals"] == "sharp":
            # the discriminator's reals are the sharp photos only, its fakes every reconstruction at
            # full size: the decoder is asked for a sharp photo's detail from every code
            return pixels, recon, losses, (recon, target), sharp.to(recon.dtype)
        return pixels, recon, losses, seen, None

    # ------------------------------------------------------------ lightning
    def check_finite_loss(self, loss: torch.Tensor) -> None:
        """Raise :class:`NonFiniteError` when ``loss`` is NaN/inf (on any rank), before its
        backward pass and optimizer step can spread it into the weights."""
        bad = not bool(torch.isfinite(loss.detach()).all())
        trainer = self._trainer
        if trainer is not None and trainer.world_size > 1:  # every rank stops together
            bad = trainer.strategy.reduce_boolean_decision(bad, all=False)
        if bad:
            raise NonFiniteError(
                f"training loss is {loss.detach().float().item()} at step {self.global_step}: training "
                "stopped and no checkpoint was written from this state (lower dae.lr, raise "
                "dae.warmup_steps, keep trainer.gradient_clip_val set, or check the data)"
            )

    def training_step(self, batch, batch_idx):
        pixels, _, losses, (recon, target), real_weight = self._step(batch, train=True)
        self.check_finite_loss(losses["loss"])
        n = len(pixels)
        if self.discriminator is not None:
            losses.update(self._adversarial_step(recon, target, losses["loss"], real_weight))
        self.log("train/loss", losses["loss"], prog_bar=True, batch_size=n)
        self.log_dict({f"train/{k}": v for k, v in losses.items() if k != "loss"}, batch_size=n)
        return losses["loss"] if self.automatic_optimization else None

    def _adversarial_step(self, recon, target, recon_loss, real_weight=None) -> dict[str, torch.Tensor]:
        """Manual optimization: one generator step (reconstruction + adversarial), one
        discriminator step (hinge loss), one scheduler step."""
        opt_g, opt_d = self.optimizers()
        w = float(self.hparams.adversarial["weight"])
        self.discriminator.requires_grad_(False)
        g_adv = -self.discriminator(recon).mean()
        loss = recon_loss + w * g_adv
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.grad_clip:
            self.clip_gradients(opt_g, gradient_clip_val=self.grad_clip, gradient_clip_algorithm="norm")
        opt_g.step()
        self.discriminator.requires_grad_(True)
        d_loss = hinge_d_loss(self.discriminator(target), self.discriminator(recon.detach()), real_weight)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        opt_d.step()
        sched = self.lr_schedulers()
        if sched is not None:
            (sched[0] if isinstance(sched, list) else sched).step()
        return {"loss": loss.detach(), "g_adv": g_adv.detach(), "d_loss": d_loss.detach()}

    def validation_step(self, batch, batch_idx):
        pixels, recon, losses, _, _ = self._step(batch)
        n = len(pixels)
        self.log_dict({f"val/{k}": v for k, v in losses.items()}, sync_dist=True, batch_size=n)
        self.log("val/psnr", psnr(to_pixels(recon), pixels), prog_bar=True, sync_dist=True, batch_size=n)

    def generator_parameters(self) -> list[torch.nn.Parameter]:
        """What the reconstruction optimizer trains: the encoder (its head, for a frozen
        trunk) and the decoder; never the frozen trunk, never the discriminator."""
        return [*self.encoder.parameters(), *self.decoder.parameters()]

    def configure_optimizers(self):
        hp = self.hparams
        params = self.generator_parameters()
        if hp.optimizer == "adam":
            opt = torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay)
        elif hp.optimizer == "adamw":
            opt = torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)
        elif hp.optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=hp.lr, momentum=0.9, nesterov=True, weight_decay=hp.weight_decay)
        else:
            raise ValueError(f"dae optimizer must be adam, adamw or sgd, got {hp.optimizer!r}")
        opts = [opt]
        if self.discriminator is not None:
            opts.append(
                torch.optim.Adam(self.discriminator.parameters(), lr=hp.adversarial["lr"], betas=(0.5, 0.999))
            )
        if hp.scheduler in (None, "none", "constant") and not hp.warmup_steps:
            return opts if len(opts) > 1 else opt
        # the scheduler steps once per batch; with a discriminator Lightning counts one
        # global step per optimizer, so max_steps covers len(opts) steps per batch
        # (estimated_stepping_batches is min(max_steps, batches x epochs): only the max_steps
        # side counts optimizer steps)
        total = int(self.trainer.estimated_stepping_batches)
        if self.trainer.max_steps not in (None, -1):
            total = min(total, int(self.trainer.max_steps) // len(opts))
        total = max(total, 1)
        warm = int(hp.warmup_steps)

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            if hp.scheduler == "cosine":
                t = min((step - warm) / max(total - warm, 1), 1.0)
                return hp.min_lr_ratio + (1 - hp.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))
            if hp.scheduler == "step":
                return hp.gamma ** ((step - warm) // hp.step_size)
            if hp.scheduler in (None, "none", "constant"):
                return 1.0
            raise ValueError(f"dae scheduler must be cosine, step or none, got {hp.scheduler!r}")

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        if len(opts) > 1:
            return opts, [{"scheduler": sched, "interval": "step"}]
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def load_dae(path) -> DAE:
    """A DAE in eval mode from a ``train_dae.py`` checkpoint, or from a weights file holding only
    ``hyper_parameters`` and ``state_dict`` (benchmarks/checkpoints/*_weights.pt; a discriminator
    it lacks keeps its initialization)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if "pytorch-lightning_version" in ckpt:
        return DAE.load_from_checkpoint(path, map_location="cpu").eval()
    model = DAE(**ckpt["hyper_parameters"])
    model.load_state_dict(ckpt["state_dict"], strict=False)
    return model.eval()
