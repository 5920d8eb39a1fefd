"""The adaptation loop: training runs with lineage, gates, (later) rollout and triggers."""
