"""The lifecycle vocabulary every loop shares: aliases, routes and stages, as enums.

* :class:`Alias`: the names the registry gives versions that serve traffic.
  Any other alias name (``challenger``...) is allowed too; these three steer
  routing.
* :class:`RouteKind`: how a prediction was routed, as its event records it;
  an A/B arm is ``ab:<version>`` (:func:`ab_route`).
* :class:`Stage`: where a version, or a model's rollout, is in its lifecycle.

They are string enums, so they compare equal to their values and serialise
as them (``Alias.CHAMPION == "champion"``).

>>> Alias.CHAMPION == "champion", ab_route(3), is_route("ab:3"), is_route("ab:")
(True, 'ab:3', True, False)
"""

from __future__ import annotations

import enum

__all__ = ["AB_PREFIX", "Alias", "RouteKind", "Stage", "ab_route", "is_route"]


class Alias(enum.StrEnum):
    """The aliases routing reads: the champion answers, a canary takes a share, a shadow scores a copy."""

    CHAMPION = "champion"
    CANARY = "canary"
    SHADOW = "shadow"


class RouteKind(enum.StrEnum):
    """How a request was routed (an event's ``route``); A/B arms are spelled ``ab:<version>``."""

    CHAMPION = "champion"
    CANARY = "canary"
    SHADOW = "shadow"


#: Prefix of an A/B arm's route name.
AB_PREFIX = "ab:"


def ab_route(version: int | str) -> str:
    """The route name of the A/B arm serving ``version``."""
    return f"{AB_PREFIX}{version}"


def is_route(name: str) -> bool:
    """Whether ``name`` is a route an event may record."""
    if name in RouteKind.__members__.values():
        return True
    return name.startswith(AB_PREFIX) and len(name) > len(AB_PREFIX)


class Stage(enum.StrEnum):
    """Where a version is in its lifecycle, or where a model's rollout is.

    A version's stage follows its routing: the champion is ``production``, the
    canary ``canary``, the shadow ``shadow``; a version that stops serving goes
    back to ``none`` (``staging`` and ``archived`` are set by hand and kept).
    """

    NONE = "none"
    STAGING = "staging"
    SHADOW = "shadow"
    CANARY = "canary"
    PRODUCTION = "production"
    ARCHIVED = "archived"
