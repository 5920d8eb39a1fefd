"""``fourloops simulate``: a project's own history replayed through all four loops, with incidents injected.

* :mod:`~fourloops.simulation.replay`: one run on a simulated clock (deliveries, requests, labels,
  the monitor and the controller at every window);
* :mod:`~fourloops.simulation.incidents`: what to break and when (a TOML file);
* :mod:`~fourloops.simulation.simulate`: the control and incident runs, detection and responses;
* :mod:`~fourloops.simulation.outcomes`: the primary metric served, and as if nobody had acted;
* :mod:`~fourloops.simulation.report`: the timeline report;
* :mod:`~fourloops.simulation.client`: the in-process client of the server's ASGI app;
* :mod:`~fourloops.simulation.worker`: one run in an interpreter of its own.
"""

from __future__ import annotations

from fourloops.simulation.incidents import Incident, load_incidents
from fourloops.simulation.replay import SimulationSettings
from fourloops.simulation.simulate import SimulationResult, simulate

__all__ = ["Incident", "SimulationResult", "SimulationSettings", "load_incidents", "simulate"]
