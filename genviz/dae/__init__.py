"""The training side: the denoising autoencoder whose decoder is genviz's generator prior.

- :mod:`genviz.dae.module`: :class:`DAE`, the LightningModule (losses, optimizers, code statistics);
- :mod:`genviz.dae.encoders`, :mod:`genviz.dae.trunk`, :mod:`genviz.dae.discriminator`: its parts;
- :mod:`genviz.dae.data`: :class:`~genviz.dae.data.ImageDataModule` over image folders;
- :mod:`genviz.dae.callbacks`: checkpoints, reconstruction grids, checkpoint I/O, the wandb logger;
- :mod:`genviz.dae.train`: ``train(cfg)`` for a composed ``train_dae`` config (``train_dae.py``).

The decoder itself (:class:`genviz.generator.Decoder`) is shared with the visualize side.
"""

from genviz.dae.module import DAE

__all__ = ["DAE"]
