"""The adaptation loop: training runs with lineage, gates, (later) rollout and triggers."""

__all__: list[str] = []
