#!/bin/bash
# DDP over several nodes with torchrun (no SLURM). Run the same command on every node:
#     NNODES=2 NODE_RANK=0 MASTER=host0:29500 GPUS=4 scripts/torchrun_ddp.sh data.root=/data
#     NNODES=2 NODE_RANK=1 MASTER=host0:29500 GPUS=4 scripts/torchrun_ddp.sh data.root=/data
# RUN_DIR must be the same path on every node (a shared file system), so that rank 0
# writes one checkpoint directory and every rank reads the same config.
#
# When a worker fails, the whole torchrun command is started again (up to MAX_RESTARTS
# times) and ckpt_path=last continues from the newest complete checkpoint; add
# callbacks.model_checkpoint.every_n_train_steps=N to lose at most N steps. (torchrun's
# own --max-restarts restarts the workers against its old rendezvous store, where
# Lightning's process group finds the dead workers' addresses and fails to connect.)
# TRAINER=ddp_cpu runs it on CPU processes. See docs/surviving-failures.md.
set -uo pipefail
: "${NNODES:=1}" "${NODE_RANK:=0}" "${MASTER:=localhost:29500}" "${GPUS:=1}" "${MAX_RESTARTS:=3}" "${TRAINER:=ddp}"
if [ "${NNODES}" -gt 1 ] && [ -z "${RUN_DIR:-}" ]; then
    echo "Set RUN_DIR to a directory every node sees (a shared file system) and pass the same one on each node." >&2
    exit 2
fi
: "${RUN_DIR:=runs/torchrun/$(date +%Y-%m-%d_%H-%M-%S)}"
for attempt in $(seq 0 "${MAX_RESTARTS}"); do
    .venv/bin/torchrun --nnodes "${NNODES}" --node-rank "${NODE_RANK}" --nproc-per-node "${GPUS}" \
        --rdzv-backend c10d --rdzv-endpoint "${MASTER}" \
        -m lightning_template_core.fit trainer="${TRAINER}" trainer.num_nodes="${NNODES}" trainer.devices="${GPUS}" \
        hydra.run.dir="${RUN_DIR}" ckpt_path=last "$@"
    status=$?
    # 0: done; 2: a mistake in the command, which a restart repeats
    if [ "${status}" -eq 0 ] || [ "${status}" -eq 2 ]; then exit "${status}"; fi
    echo "torchrun exited with status ${status} (attempt ${attempt}); continuing from the newest checkpoint" >&2
done
exit "${status}"
