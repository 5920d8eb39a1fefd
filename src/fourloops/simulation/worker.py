"""One simulation run in a process of its own: ``python -m fourloops.simulation.worker JOB``.

``JOB`` is a pickle of the run's arguments (written by
:func:`fourloops.simulation.simulate.simulate`); progress goes to stdout, one
line per message, and the :class:`~fourloops.simulation.replay.RunResult` (or
the error, as its class name and message) to ``JOB.result``. A fresh
interpreter rather than ``multiprocessing``: a caller's script or notebook is
never imported again in the child, whatever it guards.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

__all__ = ["main"]


def main(job_file: str) -> int:
    from fourloops.errors import FourloopsError
    from fourloops.simulation.replay import run_once

    job = Path(job_file)
    source, workdir, settings, incidents, name = pickle.loads(job.read_bytes())

    def say(message: str) -> None:
        sys.stdout.write(message.replace("\n", " ") + "\n")
        sys.stdout.flush()

    try:
        outcome: object = run_once(source, workdir, settings, incidents, name=name, progress=say)
        code = 0
    except FourloopsError as err:
        outcome, code = {"error": type(err).__name__, "message": str(err)}, 1
    job.with_suffix(".result").write_bytes(pickle.dumps(outcome))
    return code


if __name__ == "__main__":  # pragma: no cover - run as a child process
    sys.exit(main(sys.argv[1]))
