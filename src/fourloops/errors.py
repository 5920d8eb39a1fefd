"""The fourloops exception tree.

Every error fourloops raises on purpose derives from :class:`FourloopsError`.
Backend exceptions (DuckDB, SQLAlchemy, Redis, file systems) are caught where
they cross into fourloops and re-raised as one of these, with the original as
``__cause__``. The command line turns them into one-line messages; the server
turns them into 4xx JSON bodies.

::

    FourloopsError
    ├── ConfigError              fourloops.toml or an environment variable is wrong
    ├── DefinitionError          a project definition is invalid or cannot be loaded
    ├── BreakingChangeError      `apply` refused a breaking change
    ├── ContractViolation        a row or request broke a data contract
    ├── SchemaError              input lacks a column, has a wrong type or is naive in time
    ├── SourceError              a source cannot be read (missing, corrupt, unsupported)
    ├── StoreError               a storage backend failed or is unreachable
    ├── RegistryError            the registry refused an operation
    │   └── PromotionBlocked     a version's gates failed, so it may not be promoted
    ├── ArtifactIntegrityError   a stored artifact is missing or its bytes changed
    ├── ModelUnavailable         the model failed (error, timeout, open circuit) and no fallback answered
    └── NotFoundError            a named object does not exist
"""

from __future__ import annotations

__all__ = [
    "ArtifactIntegrityError",
    "BreakingChangeError",
    "ConfigError",
    "ContractViolation",
    "DefinitionError",
    "FourloopsError",
    "ModelUnavailable",
    "NotFoundError",
    "PromotionBlocked",
    "RegistryError",
    "SchemaError",
    "SourceError",
    "StoreError",
]


class FourloopsError(Exception):
    """Root of every error fourloops raises deliberately."""

    #: Exit code the command line uses for this error.
    exit_code: int = 1


class ConfigError(FourloopsError):
    """The configuration file or an environment override is missing or invalid."""

    exit_code = 2


class DefinitionError(FourloopsError):
    """A project definition (entity, source, feature view, contract) is invalid."""

    exit_code = 2


class BreakingChangeError(FourloopsError):
    """`apply` found breaking changes and was not allowed to make them."""

    exit_code = 3

    def __init__(self, message: str, changes: list[str]) -> None:
        super().__init__(message)
        self.changes = changes


class ContractViolation(FourloopsError):
    """A single row or request broke its contract.

    ``violations`` maps each offending field to the rule it broke.
    """

    exit_code = 4

    def __init__(self, message: str, violations: dict[str, str]) -> None:
        super().__init__(message)
        self.violations = violations


class SchemaError(FourloopsError):
    """Input is missing a required column, has an unusable type, or naive times."""

    exit_code = 2


class SourceError(FourloopsError):
    """A data source cannot be read."""

    exit_code = 2


class StoreError(FourloopsError):
    """A storage backend failed or is unreachable."""

    exit_code = 5


class RegistryError(FourloopsError):
    """The registry refused an operation."""


class PromotionBlocked(RegistryError):
    """A version may not be promoted: its recorded validation gates did not pass."""


class ArtifactIntegrityError(FourloopsError):
    """A stored artifact is missing, or its SHA-256 or size no longer match its record."""

    exit_code = 6


class ModelUnavailable(FourloopsError):
    """A served model could not answer (it failed, timed out or its circuit is open) and no fallback did."""


class NotFoundError(FourloopsError):
    """A named object (feature view, field, model, version) does not exist."""

    exit_code = 2
