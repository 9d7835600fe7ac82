"""The package's public surface: a complete __all__, sync and async mirrors, no import side effects."""

from __future__ import annotations

import inspect
import logging
import subprocess
import sys

import pvekit


def test_all_lists_every_public_name() -> None:
    exported = set(pvekit._EXPORTS)

    assert exported | {"__version__"} == set(pvekit.__all__)
    for name in pvekit.__all__:
        assert getattr(pvekit, name) is not None, name


def test_exported_classes_come_from_their_module() -> None:
    for name, module in pvekit._EXPORTS.items():
        value = getattr(pvekit, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__ == f"pvekit.{module}", name


def test_import_loads_no_client_module() -> None:
    code = "import sys, pvekit; assert 'pvekit._async_client' not in sys.modules; assert 'asyncio' not in sys.modules"

    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)

    assert completed.returncode == 0, completed.stderr


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
