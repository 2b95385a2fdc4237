#!/bin/bash
# DDP over several nodes with torchrun (no SLURM). Run the same command on every node:
#     NNODES=2 NODE_RANK=0 MASTER=host0:29500 GPUS=4 scripts/torchrun_ddp.sh data.root=/data
#     NNODES=2 NODE_RANK=1 MASTER=host0:29500 GPUS=4 scripts/torchrun_ddp.sh data.root=/data
# RUN_DIR must be the same path on every node (a shared file system), so that rank 0
# writes one checkpoint directory and every rank reads the same config.
set -euo pipefail
: "${NNODES:=1}" "${NODE_RANK:=0}" "${MASTER:=localhost:29500}" "${GPUS:=1}"
if [ "${NNODES}" -gt 1 ] && [ -z "${RUN_DIR:-}" ]; then
    echo "Set RUN_DIR to a directory every node sees (a shared file system) and pass the same one on each node." >&2
    exit 2
fi
: "${RUN_DIR:=runs/torchrun/$(date +%Y-%m-%d_%H-%M-%S)}"
exec .venv/bin/torchrun --nnodes "${NNODES}" --node-rank "${NODE_RANK}" --nproc-per-node "${GPUS}" \
    --rdzv-backend c10d --rdzv-endpoint "${MASTER}" \
    -m lightning_template.fit trainer=ddp trainer.num_nodes="${NNODES}" trainer.devices="${GPUS}" \
    hydra.run.dir="${RUN_DIR}" "$@"
