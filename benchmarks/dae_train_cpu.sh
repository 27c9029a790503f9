#!/usr/bin/env bash
# Train the named cpu_small DAE on the shared 1000 ImageNet photos, on a CPU, in ~35 min.
# Writes runs/dae_cpu_small/checkpoints/last.ckpt (loss=paper, the generator other benchmarks
# use) and, with BOTH=1, runs/dae_cpu_small_fft/ (loss=mse+fft) at the same time.
#   bash benchmarks/dae_train_cpu.sh            # from the repo root; ../shared beside it
#   BOTH=1 bash benchmarks/dae_train_cpu.sh     # also the high-frequency loss variant
# ~3.5 s/step on the shared 2-core box: 600 steps (cosine to the end) fit the 36 min MAX_TIME.
# Extra arguments are passed to train_dae.py (e.g. trainer.max_steps=200).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
COMMON=(dae=cpu_small data=val1k trainer=cpu logger=csv
  data.batch_size=32 trainer.max_steps=${STEPS:-600} trainer.max_epochs=-1
  +trainer.max_time=${MAX_TIME:-00:00:36:00} trainer.log_every_n_steps=10
  trainer.enable_progress_bar=false callbacks.recon_grid.every_n_steps=200)
mkdir -p runs
if [[ "${BOTH:-0}" == 1 ]]; then
  python train_dae.py "${COMMON[@]}" name=dae_cpu_small_fft dae.loss=mse+fft "$@" \
    > runs/dae_cpu_small_fft.log 2>&1 &
fi
python train_dae.py "${COMMON[@]}" name=dae_cpu_small dae.loss=paper "$@" 2>&1 | tee runs/dae_cpu_small.log
wait
