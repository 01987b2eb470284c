"""Per-registry state shared by the qw_metrics modules."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry


def resolve_registry(registry: CollectorRegistry | None) -> CollectorRegistry:
    """The registry to use: `registry`, or prometheus_client's default one when None."""
    if registry is None:
        return REGISTRY
    if not isinstance(registry, CollectorRegistry):
        raise TypeError(
            f"registry must be a prometheus_client.CollectorRegistry or None, "
            f"not {type(registry).__name__}"
        )
    return registry
