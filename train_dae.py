"""Train the denoising autoencoder whose decoder is genviz's generator prior.

    python train_dae.py                                        # paper config, ImageNet dogs
    python train_dae.py dae=cpu_small data=val1k trainer=cpu   # quick local run
    python train_dae.py dae=cpu_small data=val1k ckpt_path=last  # resume that run
    python train_dae.py -m dae.loss=paper,mse+fft              # a sweep
    python train_dae.py dae=trunk_lite0 dae.adversarial.weight=0.05 init_from=PATH  # fine-tune

The run directory is ``runs/<name>`` (``name`` defaults to ``<dae>-<data>``); it holds
``checkpoints/last.ckpt`` and ``best-*.ckpt``, ``samples/recon_step*.png`` and the
logs.  ``genviz.generator.decoder_from_checkpoint`` loads the decoder of a checkpoint.
See docs/training.md for multi-GPU and SLURM; the training itself is ``genviz.dae.train``.

Exit codes: 0 done; 2 a bad input or a NaN/inf loss (one line on stderr, naming the key);
130 / 143 stopped by SIGINT / SIGTERM after writing ``last.ckpt`` (resume with ``ckpt_path=last``).
"""

import hydra
from omegaconf import DictConfig

from genviz.dae.train import run


@hydra.main(version_base="1.3", config_path="conf", config_name="train_dae")
def main(cfg: DictConfig) -> float | None:
    return run(cfg)


if __name__ == "__main__":
    main()
