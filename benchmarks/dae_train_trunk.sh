#!/usr/bin/env bash
# Train the decoder genviz ships (dae=trunk_lite0) on the even-index classes of the shared
# ImageNet photos, on a CPU.  Resumable: run it again and it continues from last.ckpt
# (ckpt_path=last), so a long run can be cut into chunks of MAX_TIME each.
#   bash benchmarks/dae_train_trunk.sh                       # from the repo root; ../shared beside it
#   STEPS=6000 MAX_TIME=00:01:30:00 bash benchmarks/dae_train_trunk.sh
#   DAE=trunk_lite0_even43k DATA=even43k_128 VAL_EVERY=500 bash benchmarks/dae_train_trunk.sh \
#     name=trunk_lite0_even43k init_from=...                 # every even-class photo (stage 5)
# LOG=runs/<file> names the log (two runs of one recipe side by side).
# Then: python benchmarks/ship_decoder.py runs/<name>/checkpoints/last.ckpt
# Extra arguments are passed to train_dae.py.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} MKL_NUM_THREADS=${MKL_NUM_THREADS:-2}
mkdir -p runs
if [[ -n "${VAL_EVERY:-}" ]]; then  # validate every VAL_EVERY batches (large data) instead of every 5 epochs
  val=(trainer.val_check_interval="$VAL_EVERY")
else
  val=(trainer.check_val_every_n_epoch=5)
fi
python train_dae.py dae="${DAE:-trunk_lite0}" data="${DATA:-val1k_even}" trainer=cpu logger=csv \
  data.batch_size=16 trainer.max_steps=${STEPS:-5000} trainer.max_epochs=-1 \
  +trainer.max_time=${MAX_TIME:-00:01:25:00} trainer.log_every_n_steps=10 "${val[@]}" \
  trainer.enable_progress_bar=false callbacks.recon_grid.every_n_steps=250 ckpt_path=last "$@" \
  2>&1 | tee -a "${LOG:-runs/${DAE:-trunk_lite0}-${DATA:-val1k_even}.log}"
