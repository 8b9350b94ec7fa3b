"""Logs and metrics: the one Powertools logger, and where metric values go (EMF in Lambda, a list in tests)."""

from __future__ import annotations

from typing import Protocol

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from daemon_guard.core.metrics import CLUSTER_DIMENSION, NAMESPACE, MetricSpec

logger = Logger(service="daemon-guard")


class MetricsSink(Protocol):
    """Where metrics go: EMF on stdout in Lambda, a list in tests."""

    def emit(self, spec: MetricSpec, value: float, cluster: str, **dimensions: str) -> None:
        """Record one value of `spec` for `cluster` (plus the spec's extra dimensions)."""


class EmfSink:
    """Powertools single-metric EMF: each value with exactly its own dimensions."""

    def emit(self, spec: MetricSpec, value: float, cluster: str, **dimensions: str) -> None:
        """Print one EMF document for this value."""
        with single_metric(name=spec.name, unit=MetricUnit(spec.unit), value=value, namespace=NAMESPACE) as m:
            m.add_dimension(name=CLUSTER_DIMENSION, value=cluster)
            for name in spec.extra_dimensions:
                m.add_dimension(name=name, value=dimensions.get(name, "none"))
