"""Benchmarks of pvekit against proxmoxer on one fake cluster: ``python -m benchmarks`` (or ``make bench``).

These measure and print; they assert nothing about timing and are not part of the test suite.
``python -m benchmarks.soak`` (or ``make soak``) is a soak run of pvekit alone: ``pvekit top`` and the async
cluster sampler for minutes, with requests, errors and memory checked after every refresh.
"""
