#!/usr/bin/env bash
# Run a capsafe experiment on a Ray cluster inside a SLURM allocation: a Ray head on the
# first node, a Ray worker on each other node, the capsafe driver (the one store writer)
# beside the head. Follows Ray's SLURM guide (docs.ray.io: "Deploying on Slurm").
#
#   sbatch scripts/ray_slurm.sh EXPERIMENT.yaml [key=value ...]
#
# output_dir (and the organism and base models) must be on storage every node mounts: the
# run checks this before it starts. Edit the #SBATCH lines for your cluster; one task per
# node holds all of that node's CPUs and GPUs, and Ray hands them to capsafe's units
# (execution.resources in the config says what a unit asks for; docs/execution.md).
#
#SBATCH --job-name=capsafe
#SBATCH --nodes=2
#SBATCH --exclusive
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=16
#SBATCH --gpus-per-task=4
#SBATCH --time=24:00:00
set -euo pipefail

CONFIG=${1:?usage: sbatch scripts/ray_slurm.sh EXPERIMENT.yaml [key=value ...]}
shift
PORT=${CAPSAFE_RAY_PORT:-6379}
CPUS=${SLURM_CPUS_PER_TASK:-$(nproc)}
GPUS=${SLURM_GPUS_PER_TASK:-0}
CAPSAFE=${CAPSAFE:-capsafe}

mapfile -t nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
head=${nodes[0]}
head_ip=$(srun --nodes=1 --ntasks=1 -w "$head" hostname --ip-address | awk '{print $1}')
address="$head_ip:$PORT"
echo "[ray_slurm] head $head ($address), ${#nodes[@]} node(s), $CPUS CPU(s) and $GPUS GPU(s) each" >&2

pids=()
stop_cluster() {
  # `ray start --block` stops its node's Ray processes when its srun step is ended.
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_cluster EXIT

srun --nodes=1 --ntasks=1 -w "$head" \
  ray start --head --node-ip-address="$head_ip" --port="$PORT" \
  --num-cpus="$CPUS" --num-gpus="$GPUS" --include-dashboard=false --block &
pids+=($!)

wait_for_nodes() {  # until the cluster has $1 live nodes (or 5 minutes pass)
  for _ in $(seq 300); do
    n=$(python -c "import ray; ray.init(address='$address', logging_level='ERROR'); print(sum(1 for x in ray.nodes() if x['Alive']))" 2>/dev/null || echo 0)
    [ "$n" -ge "$1" ] && return 0
    sleep 1
  done
  echo "[ray_slurm] the Ray cluster did not reach $1 node(s) at $address" >&2
  return 1
}
wait_for_nodes 1

for worker in "${nodes[@]:1}"; do
  srun --nodes=1 --ntasks=1 -w "$worker" \
    ray start --address="$address" --num-cpus="$CPUS" --num-gpus="$GPUS" --block &
  pids+=($!)
done
wait_for_nodes "${#nodes[@]}"

# The driver: plans, sends units to the cluster and writes the store.
"$CAPSAFE" run "$CONFIG" execution.engine=ray "execution.address=$address" "$@"
