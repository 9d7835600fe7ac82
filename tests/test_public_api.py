"""The package's public surface: a complete __all__, sync and async mirrors, no import side effects."""

from __future__ import annotations

import inspect
import logging
import subprocess
import sys

import pvekit


def test_all_lists_every_public_name() -> None:
    public = {
        name
        for name, value in vars(pvekit).items()
        if not name.startswith("_") and (inspect.isclass(value) or inspect.isfunction(value))
    }

    assert public <= set(pvekit.__all__)
    assert all(hasattr(pvekit, name) for name in pvekit.__all__)


def test_async_client_mirrors_client() -> None:
    pairs = [
        (pvekit.Vms, pvekit.AsyncVms),
        (pvekit.Tasks, pvekit.AsyncTasks),
        (pvekit.Task, pvekit.AsyncTask),
        (pvekit.Cluster, pvekit.AsyncCluster),
        (pvekit.Metrics, pvekit.AsyncMetrics),
        (pvekit.Rrd, pvekit.AsyncRrd),
        (pvekit.Agent, pvekit.AsyncAgent),
        (pvekit.ClusterSampler, pvekit.AsyncClusterSampler),
    ]
    for sync, asynchronous in pairs:
        sync_methods = {name for name, _ in inspect.getmembers(sync, inspect.isfunction) if not name.startswith("_")}
        async_methods = {
            name for name, _ in inspect.getmembers(asynchronous, inspect.isfunction) if not name.startswith("_")
        }
        assert sync_methods == async_methods, sync.__name__
        for name in sync_methods:
            sync_parameters = list(inspect.signature(getattr(sync, name)).parameters)
            async_parameters = list(inspect.signature(getattr(asynchronous, name)).parameters)
            assert sync_parameters == async_parameters, f"{sync.__name__}.{name}"


def test_library_adds_no_log_handlers() -> None:
    logger = logging.getLogger("pvekit")

    assert logger.handlers == []
    assert logger.level == logging.NOTSET


def test_import_changes_no_warning_filters() -> None:
    code = "import warnings; before = list(warnings.filters); import pvekit; assert warnings.filters == before"

    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)

    assert completed.returncode == 0, completed.stderr
