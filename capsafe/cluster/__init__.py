"""Running an experiment's plan on a Ray cluster (execution.engine: ray); docs/execution.md."""

from capsafe.cluster.driver import RayCluster, ray_cluster

__all__ = ["RayCluster", "ray_cluster"]
