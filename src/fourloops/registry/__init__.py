"""The registry: the system of record every loop reads (definitions now; model versions next)."""

__all__: list[str] = []
