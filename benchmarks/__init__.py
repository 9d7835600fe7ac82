"""Benchmarks of pvekit against proxmoxer on one fake cluster: ``python -m benchmarks`` (or ``make bench``).

These measure and print; they assert nothing about timing and are not part of the test suite.
"""
