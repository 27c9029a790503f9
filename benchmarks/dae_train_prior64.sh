#!/usr/bin/env bash
# Train the 64 px generator prior (dae=prior64) on every even-class photo of ../shared/data
# (data=even43k, ~43,450 photos), on a CPU, in resumable chunks: run it again and it continues
# from last.ckpt (ckpt_path=last); the cosine schedule spans STEPS optimizer steps (two per batch:
# decoder and discriminator) whatever the chunking.
#   bash benchmarks/dae_train_prior64.sh                          # from the repo root; ../shared beside it
#   MAX_TIME=00:00:30:00 bash benchmarks/dae_train_prior64.sh     # a 30-minute chunk
# Then: python benchmarks/ship_decoder.py runs/prior64-even43k/checkpoints/last.ckpt ...
# Extra arguments are passed to train_dae.py.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
mkdir -p runs
python train_dae.py dae=prior64 data=even43k trainer=cpu logger=csv \
  data.batch_size=32 trainer.max_steps=${STEPS:-5200} trainer.max_epochs=-1 \
  +trainer.max_time=${MAX_TIME:-00:01:45:00} trainer.log_every_n_steps=10 \
  trainer.val_check_interval=400 trainer.enable_progress_bar=false \
  callbacks.recon_grid.every_n_steps=400 ckpt_path=last "$@" 2>&1 | tee -a runs/prior64-even43k.log
