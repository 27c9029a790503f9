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

Checkpoint contract (read by :func:`genviz.generator.decoder_from_checkpoint`):
``hyper_parameters["decoder"]`` is a plain dict of Decoder kwargs and the decoder
weights are under ``decoder.*``.
"""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from genviz.generator import Decoder, Encoder, from_pixels, to_pixels

LOSSES = ("paper", "mse+fft", "mse+grad")


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
    ):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"dae loss must be one of {LOSSES}, got {loss!r}")
        decoder, encoder = _plain(decoder or {}), _plain(encoder or {})
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
        encoder = {**encoder, "image_size": image_size, "code_dim": self.decoder.code_dim}
        self.encoder = Encoder(**encoder)

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

    def compute_loss(self, recon: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        mse = F.mse_loss(recon, target)
        out = {"mse": mse, "loss": mse}
        if self.hparams.loss == "mse+fft":
            out["hf"] = fft_amplitude_l1(recon, target)
        elif self.hparams.loss == "mse+grad":
            out["hf"] = gradient_l1(recon, target)
        if "hf" in out:
            out["loss"] = mse + self.hparams.hf_weight * out["hf"]
        return out

    def _step(self, batch):
        pixels = batch[0] if isinstance(batch, list | tuple) else batch
        target = from_pixels(pixels)
        recon = self(from_pixels(self.add_noise(pixels)))
        return pixels, recon, self.compute_loss(recon, target)

    # ------------------------------------------------------------ lightning
    def training_step(self, batch, batch_idx):
        pixels, _, losses = self._step(batch)
        n = len(pixels)
        self.log("train/loss", losses["loss"], prog_bar=True, batch_size=n)
        self.log_dict({f"train/{k}": v for k, v in losses.items() if k != "loss"}, batch_size=n)
        return losses["loss"]

    def validation_step(self, batch, batch_idx):
        pixels, recon, losses = self._step(batch)
        n = len(pixels)
        self.log_dict({f"val/{k}": v for k, v in losses.items()}, sync_dist=True, batch_size=n)
        self.log("val/psnr", psnr(to_pixels(recon), pixels), prog_bar=True, sync_dist=True, batch_size=n)

    def configure_optimizers(self):
        hp = self.hparams
        params = self.parameters()
        if hp.optimizer == "adam":
            opt = torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay)
        elif hp.optimizer == "adamw":
            opt = torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)
        elif hp.optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=hp.lr, momentum=0.9, nesterov=True, weight_decay=hp.weight_decay)
        else:
            raise ValueError(f"dae optimizer must be adam, adamw or sgd, got {hp.optimizer!r}")
        if hp.scheduler in (None, "none", "constant") and not hp.warmup_steps:
            return opt
        total = max(int(self.trainer.estimated_stepping_batches), 1)
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
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
