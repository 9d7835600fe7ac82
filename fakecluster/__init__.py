"""The project's fake PVE cluster for tests and demos, built on fakepve. It is never shipped with pvekit.

Every server here listens on 127.0.0.1 only.
"""

from __future__ import annotations

from .cluster import FakeCluster
from .demo import DEMO_VMS, DemoVm, build_demo, demo_cluster
from .pve import RRD_POINTS, RRD_STEPS, WorkloadPve
from .workload import Rates, TrackedVm, Workload

__all__ = [
    "DEMO_VMS",
    "RRD_POINTS",
    "RRD_STEPS",
    "DemoVm",
    "FakeCluster",
    "Rates",
    "TrackedVm",
    "Workload",
    "WorkloadPve",
    "build_demo",
    "demo_cluster",
]
