"""``python -m pvekit``: the same as the ``pvekit`` command."""

from __future__ import annotations

from ._entry import main

if __name__ == "__main__":
    main()
