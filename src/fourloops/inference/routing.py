"""Which model version answers a request: champion, canary, A/B, plus a shadow.

Assignment is a pure function of ``(model, unit_id)``: the first 8 bytes of
their BLAKE2b hash, as a number in ``[0, 1)``, pick the route. The same unit
always sees the same version on every server and after every restart, and
different models split their units independently.

* **Canary**: units with ``u < canary_share`` go to the canary. Raising the
  share only adds units, so a ramp from 10 % to 20 % keeps the first 10 % on
  the canary (monotone ramp); lowering it moves only the excess back.
* **A/B**: ``ab`` maps versions to shares summing to 1; consecutive slices of
  ``[0, 1)`` in version order go to each. It replaces the champion/canary split.
* **Shadow**: scored off the request path; reported as ``shadow_version`` and
  never the version that answers.

Every :class:`Route` carries its ``propensity``, the probability that a unit
lands on that route, which the event log keeps for off-policy evaluation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from fourloops.definitions.lifecycle import RouteKind, ab_route
from fourloops.errors import ConfigError
from fourloops.registry.routing import UNIT_ID, RoutingSpec, check_share, check_split, check_version

__all__ = ["Route", "RoutingTable", "unit_position"]

_UNIT_SEPARATOR = "\x1f"
_DOUBLE_BITS = 53


def unit_position(model: str, unit_id: str) -> float:
    """A unit's stable position in ``[0, 1)`` for ``model``.

    The first 8 bytes of BLAKE2b over ``model``, a unit separator and
    ``unit_id``, keeping the top 53 bits so the float is exact and below 1.

    >>> unit_position("churn", "user-42") == unit_position("churn", "user-42")
    True
    >>> 0.0 <= unit_position("churn", "user-42") < 1.0
    True
    """
    digest = hashlib.blake2b(f"{model}{_UNIT_SEPARATOR}{unit_id}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> (64 - _DOUBLE_BITS)) / (1 << _DOUBLE_BITS)


@dataclass(frozen=True, slots=True)
class Route:
    """Where one request goes.

    ``name`` is ``"champion"``, ``"canary"`` or ``"ab:<version>"``;
    ``propensity`` is the share of units routed that way; ``shadow_version``
    is the version to score a copy with, off the request path, if any.
    """

    version: int
    name: str
    propensity: float
    shadow_version: int | None = None


@dataclass(frozen=True)
class RoutingTable:
    """The routes of one model; immutable, so a new table is swapped in atomically.

    >>> table = RoutingTable(champion=3, canary=4, canary_share=0.1, shadow=5, model="churn")
    >>> table.route("user-42")
    Route(version=3, name='champion', propensity=0.9, shadow_version=5)
    >>> sum(table.route(f"user-{i}").name == "canary" for i in range(1000))
    101
    >>> RoutingTable(champion=1, ab={1: 0.5, 2: 0.25}).route("x")
    Traceback (most recent call last):
    ...
    fourloops.errors.ConfigError: routing ab shares must sum to 1, got 0.75 ({1: 0.5, 2: 0.25})
    """

    champion: int
    canary: int | None = None
    canary_share: float = 0.0
    shadow: int | None = None
    ab: dict[int, float] | None = None
    model: str = ""
    sticky_key: str = UNIT_ID  # what keeps a unit on one version: the unit id, or a request field
    _slices: tuple[tuple[float, int, float], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_version(self.champion, "champion")
        share = check_share(self.canary_share, "canary_share")
        if self.canary is not None:
            check_version(self.canary, "canary")
            if self.canary == self.champion:
                raise ConfigError(f"routing canary {self.canary} is also the champion")
        elif share > 0.0:
            raise ConfigError(f"routing canary_share is {share} but no canary version is set")
        if self.shadow is not None:
            check_version(self.shadow, "shadow")
        if not isinstance(self.model, str):
            raise ConfigError(f"routing model must be a name (str), got {self.model!r}")
        # (upper end of the slice, version, share), in order over [0, 1).
        slices: list[tuple[float, int, float]] = []
        if self.ab is not None:
            if self.canary is not None:
                raise ConfigError("routing takes either a canary or an A/B split, not both")
            upper = 0.0
            for version, version_share in check_split(self.ab).items():
                upper += version_share
                slices.append((upper, version, version_share))
        elif self.canary is not None and share > 0.0:
            slices = [(share, self.canary, share), (1.0, self.champion, 1.0 - share)]
        else:
            slices = [(1.0, self.champion, 1.0)]
        # Empty slices never route; the last one also takes the rounding gap below 1.
        object.__setattr__(self, "_slices", tuple(s for s in slices if s[2] > 0.0))

    def route(self, unit_id: str) -> Route:
        """The route for ``unit_id`` (use the request id when there is no unit)."""
        u = unit_position(self.model, unit_id)
        _, version, share = next((s for s in self._slices if u < s[0]), self._slices[-1])
        if self.ab is not None:
            name = ab_route(version)
        elif version == self.canary and version != self.champion:
            name = RouteKind.CANARY.value
        else:
            name = RouteKind.CHAMPION.value
        return Route(version, name, share, self.shadow)

    def versions(self) -> set[int]:
        """Every version this table may use, shadow included (to load them)."""
        found = {version for _, version, _ in self._slices} | {self.champion}
        if self.shadow is not None:
            found.add(self.shadow)
        return found

    def to_dict(self) -> dict[str, object]:
        """The table as JSON-ready values (A/B versions become string keys)."""
        return {
            "model": self.model,
            "champion": self.champion,
            "canary": self.canary,
            "canary_share": self.canary_share,
            "shadow": self.shadow,
            "ab": None if self.ab is None else {str(v): s for v, s in self.ab.items()},
            "sticky_key": self.sticky_key,
        }

    @classmethod
    def from_spec(cls, spec: RoutingSpec) -> RoutingTable:
        """The table serving a registry routing (its champion must be set).

        While an A/B split is set it decides alone (a canary alias is kept but
        gets no traffic); a canary or shadow that is also the champion is
        ignored, as is a canary with no share.
        """
        if spec.champion is None:
            raise ConfigError(f"model {spec.model!r} has no champion to route to")
        shadow = None if spec.shadow == spec.champion else spec.shadow
        if spec.ab:
            return cls(
                spec.champion, shadow=shadow, ab=dict(spec.ab), model=spec.model, sticky_key=spec.sticky_key
            )
        canary = None if spec.canary == spec.champion else spec.canary
        return cls(
            spec.champion,
            canary=canary,
            canary_share=spec.canary_share if canary is not None else 0.0,
            shadow=shadow,
            model=spec.model,
            sticky_key=spec.sticky_key,
        )

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> RoutingTable:
        """Rebuild a table from :meth:`to_dict`'s output."""
        ab = data.get("ab")
        try:
            return cls(
                champion=data["champion"],  # type: ignore[arg-type]
                canary=data.get("canary"),  # type: ignore[arg-type]
                canary_share=data.get("canary_share", 0.0),  # type: ignore[arg-type]
                shadow=data.get("shadow"),  # type: ignore[arg-type]
                ab=None if ab is None else {int(v): s for v, s in ab.items()},  # type: ignore[attr-defined]
                model=data.get("model", ""),  # type: ignore[arg-type]
                sticky_key=data.get("sticky_key", UNIT_ID),  # type: ignore[arg-type]
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ConfigError(f"invalid routing table {data!r}: {err}") from err
