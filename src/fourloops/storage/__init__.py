"""Storage backends: metadata database, online store, (later) event and artifact stores."""

__all__: list[str] = []
