"""CDK constructs: DaemonGuard and its parts (installed from the wheel as ``daemon_guard_cdk``)."""

from .constraints import GateConstraints
from .construct import CapacityProviderInfo, DaemonGuard, DaemonGuardProps

__all__ = ["CapacityProviderInfo", "DaemonGuard", "DaemonGuardProps", "GateConstraints"]
