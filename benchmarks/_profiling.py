"""What a benchmark child's pyinstrument profile says: self time by function, and time under named parts.

Used by the children that profile (``_controller_child.py``, ``_monitor_scaling_child.py``)::

    profiler = Profiler(interval=0.005)
    profiler.start(); work(); profiler.stop()
    top_frames(profiler)            # [{"frame": "Class.function (file:line)", "seconds": ..., "share": ...}]
    inclusive(profiler, {"queries": ("duckdb/",), "binning": ("_bin_numeric",)})
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["frame_name", "frames", "inclusive", "top_frames"]


def frames(profiler: Any) -> list[Any]:
    """Every frame of the last session that stands for a call (pyinstrument's synthetic ones left out)."""
    out = []
    stack = [profiler.last_session.root_frame()]
    while stack:
        frame = stack.pop()
        if frame is None:
            continue
        if not frame.is_synthetic:
            out.append(frame)
        stack.extend(frame.children)
    return out


def frame_name(frame: Any) -> str:
    """``Class.function (file:line)``, or ``function (file:line)``."""
    owner = f"{frame.class_name}." if frame.class_name else ""
    return f"{owner}{frame.function} ({frame.file_path_short}:{frame.line_no})"


def top_frames(profiler: Any, limit: int = 12) -> list[dict[str, Any]]:
    """Self time by function, largest first (a C call counts in the Python function that made it)."""
    own: dict[str, float] = {}
    for frame in frames(profiler):
        own[frame_name(frame)] = own.get(frame_name(frame), 0.0) + frame.total_self_time
    total = profiler.last_session.root_frame().time or math.inf
    ranked = sorted(own.items(), key=lambda kv: -kv[1])[:limit]
    return [{"frame": k, "seconds": v, "share": v / total} for k, v in ranked]


def _matches(frame: Any, needle: str) -> bool:
    """A needle ending in ``/`` names a package (``duckdb/``: any frame in its files); any other one a
    function, as ``function`` or ``Class.function``."""
    if frame.is_synthetic:
        return False
    if needle.endswith("/"):
        return needle in (frame.file_path_short or "")
    owner = f"{frame.class_name}.{frame.function}" if frame.class_name else frame.function
    return needle in (frame.function, owner)


def inclusive(profiler: Any, parts: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Time spent in (and under) each part, a part being the functions or packages it names (see
    :func:`_matches`); a call inside one part counts in that part only (the outermost one)."""
    out = dict.fromkeys(parts, 0.0)

    def walk(frame: Any) -> None:
        for part, needles in parts.items():
            if any(_matches(frame, needle) for needle in needles):
                out[part] += frame.time
                return
        for child in frame.children:
            walk(child)

    walk(profiler.last_session.root_frame())
    return out
