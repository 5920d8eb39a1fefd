"""The ingestion loop: sources -> contracts -> offline store -> training sets and online store."""

__all__: list[str] = []
