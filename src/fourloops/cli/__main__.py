"""``python -m fourloops.cli``: the command line."""

from __future__ import annotations

from fourloops.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    main()
