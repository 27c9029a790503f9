"""A prior on the generator's code: a denoising autoencoder on codes of real photos (PPGN's
h-DAE, Nguyen et al. 2017).

Activation maximization moves the code wherever the classifier likes it, and a decoder decodes
codes far from its training codes to low-contrast grey (benchmarks/RESULTS.md, "Where the grey
comes from").  A DAE ``R`` trained to undo Gaussian noise on real codes learns where they lie:
``R(h) - h`` points toward them (it estimates the score of the code distribution, Alain & Bengio
2014), so ``energy(h) = mean((R(h) - h)²)`` is small on real codes and grows off them.  The
generator prior adds ``weight x energy`` to its loss (``generator.param.penalty.kind=code_dae``).

Codes are standardized by the training codes' per-dimension mean and standard deviation; the
network is convolutional over the code's ``channels x size x size`` grid (the decoder's input),
residual (``R(z) = z + net(z)``), with a receptive field that covers an 8 x 8 grid.

Stored as ``{"hyper_parameters": {...}, "state_dict": {...}}``: a file of its own
(:func:`save` / :func:`load`), or under the key ``"code_prior"`` of a decoder checkpoint (the
shipped decoder carries its own; :func:`genviz.generator.decoder_from_checkpoint` attaches it).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn


class CodePrior(nn.Module):
    """``bank``: how many codes of real photos it keeps (buffer ``bank`` [bank, n], the decoder's
    units): activation maximization can start from one (``generator.param.alpha.init=bank``)."""

    def __init__(self, channels: int, size: int, hidden: int = 128, noise: float = 0.5, bank: int = 0):
        super().__init__()
        self.channels, self.size, self.hidden, self.noise = (
            int(channels),
            int(size),
            int(hidden),
            float(noise),
        )
        c, h = self.channels, self.hidden
        self.net = nn.Sequential(
            nn.Conv2d(c, h, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(h, h, 3, padding=2, dilation=2),
            nn.ReLU(),
            nn.Conv2d(h, h, 3, padding=2, dilation=2),
            nn.ReLU(),
            nn.Conv2d(h, c, 3, padding=1),
        )
        nn.init.zeros_(self.net[-1].weight)  # starts as the identity: R(z) = z
        nn.init.zeros_(self.net[-1].bias)
        n = self.code_dim
        self.register_buffer("mean", torch.zeros(n))
        self.register_buffer("std", torch.ones(n))
        self.register_buffer("bank", torch.zeros(int(bank), n))
        self.bank_labels: list[str] = []  # what each bank code is a photo of (WordNet ids), if known

    @property
    def code_dim(self) -> int:
        return self.channels * self.size**2

    def hyper_parameters(self) -> dict:
        return {
            "channels": self.channels,
            "size": self.size,
            "hidden": self.hidden,
            "noise": self.noise,
            "bank": len(self.bank),
        }

    def standardize(self, code: torch.Tensor) -> torch.Tensor:
        return (code - self.mean) / self.std

    def denoise(self, z: torch.Tensor) -> torch.Tensor:
        """Standardized codes [B, n] -> their denoised version [B, n]."""
        g = z.reshape(len(z), self.channels, self.size, self.size)
        return z + self.net(g).reshape(len(z), -1)

    def energy(self, code: torch.Tensor) -> torch.Tensor:
        """Codes [B, n] (the decoder's units) -> [B] mean squared denoising step, in standard
        deviations: small on codes like the training codes, large off them."""
        z = self.standardize(code)
        return (self.denoise(z) - z).pow(2).mean(1)


def fit(
    codes: torch.Tensor,
    channels: int,
    size: int,
    hidden: int = 128,
    noise: float = 0.5,
    steps: int = 2000,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = False,
    bank: int = 256,
    bank_codes: torch.Tensor | None = None,
    bank_labels: list[str] | None = None,
) -> tuple[CodePrior, list[float]]:
    """Train a :class:`CodePrior` on ``codes`` [N, n] (denoising: ``noise`` standard deviations of
    Gaussian noise, MSE to the clean code; Adam, cosine schedule); it keeps ``bank`` of the codes
    (a seeded draw), or with ``bank_codes`` and their ``bank_labels`` up to ``bank`` of those,
    spread over as many labels as it can (:func:`spread`).  Returns (prior in eval mode, the loss
    every 100 steps)."""
    if codes.dim() != 2 or codes.shape[1] != channels * size**2:
        raise ValueError(f"codes must be [N, {channels * size**2}], got {list(codes.shape)}")
    if len(codes) < 2:
        raise ValueError(f"a code prior needs at least 2 codes, got {len(codes)}")
    g = torch.Generator().manual_seed(int(seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        n_bank = len(codes) if bank_codes is None else len(bank_codes)
        prior = CodePrior(channels, size, hidden, noise, min(int(bank), n_bank))
    codes = codes.float()
    if bank_codes is None:
        keep = torch.randperm(len(codes), generator=torch.Generator().manual_seed(int(seed) + 1))
        prior.bank.copy_(codes[keep[: len(prior.bank)]])
    else:
        if bank_labels is None or len(bank_labels) != len(bank_codes):
            raise ValueError("bank_codes need one label each (bank_labels)")
        keep = spread(bank_labels, len(prior.bank), seed)
        prior.bank.copy_(bank_codes.float()[keep])
        prior.bank_labels = [bank_labels[i] for i in keep]
    prior.mean.copy_(codes.mean(0))
    prior.std.copy_(codes.std(0).clamp_min(1e-6))
    z_all = prior.standardize(codes)
    opt = torch.optim.Adam(prior.net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / steps, 1.0)))
    )
    curve, running = [], 0.0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="code prior")
    prior.train()
    for step in range(int(steps)):
        idx = torch.randint(len(z_all), (min(batch_size, len(z_all)),), generator=g)
        z = z_all[idx]
        noisy = z + noise * torch.randn(z.shape, generator=g)
        loss = (prior.denoise(noisy) - z).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running += loss.item()
        if (step + 1) % 100 == 0:
            curve.append(running / 100)
            running = 0.0
            if bar is not None:
                bar.set_postfix(loss=f"{curve[-1]:.4f}")
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    return prior.eval().requires_grad_(False), curve


def spread(labels: list[str], n: int, seed: int = 0) -> list[int]:
    """Indices of ``n`` items taking the labels in turn (a seeded order of labels, then of items
    within each): one item of every label before a second of any, so that ``n`` at least the
    number of labels covers them all."""
    g = torch.Generator().manual_seed(int(seed) + 1)
    by_label: dict[str, list[int]] = {}
    for i in torch.randperm(len(labels), generator=g).tolist():
        by_label.setdefault(labels[i], []).append(i)
    queues = list(by_label.values())
    picked: list[int] = []
    for depth in range(max(map(len, queues), default=0)):
        picked += [q[depth] for q in queues if depth < len(q)]
        if len(picked) >= n:
            break
    return picked[:n]


def fingerprint(decoder: nn.Module) -> str:
    """A short hash of a decoder's weights: a code prior records the decoder it was trained for."""
    import hashlib

    h = hashlib.sha1()
    for k, v in sorted(decoder.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def to_dict(prior: CodePrior, decoder: str | None = None) -> dict:
    """``decoder``: the :func:`fingerprint` of the decoder whose codes it was trained on."""
    d = {"hyper_parameters": prior.hyper_parameters(), "state_dict": prior.state_dict()}
    if prior.bank_labels:
        d["bank_labels"] = list(prior.bank_labels)
    if decoder:
        d["decoder"] = decoder
    return d


def from_dict(d: dict, where: str = "code prior") -> CodePrior:
    try:
        state = dict(d["state_dict"])
        prior = CodePrior(**d["hyper_parameters"])
        state.setdefault("bank", prior.bank)  # priors saved before the bank existed keep none
        prior.load_state_dict({k: v.float() for k, v in state.items()})
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"{where}: not a genviz code prior ({str(e).splitlines()[0][:200]})") from None
    prior.decoder_fingerprint = d.get("decoder") if isinstance(d, dict) else None
    labels = d.get("bank_labels") or []
    if labels and len(labels) != len(prior.bank):
        raise ValueError(f"{where}: {len(labels)} bank labels for {len(prior.bank)} bank codes")
    prior.bank_labels = [str(x) for x in labels]
    return prior.eval().requires_grad_(False)


def save(prior: CodePrior, path, decoder: str | None = None) -> Path:
    from .atomic import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(to_dict(prior, decoder), tmp)
    return path


def load(path) -> CodePrior:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"code prior not found: {str(path)!r}; train one with `python -m genviz.dae.codes CHECKPOINT` "
            "or leave generator.param.penalty.prior unset for the one the decoder carries"
        )
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # not a torch file, truncated, holds code
        raise ValueError(f"{path}: not a readable code prior ({type(e).__name__})") from None
    if isinstance(d, dict) and "code_prior" in d:  # a decoder checkpoint that carries one
        d = d["code_prior"]
    return from_dict(d, str(path))
