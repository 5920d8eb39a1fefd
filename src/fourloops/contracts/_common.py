"""Constants shared by the batch and the row validator.

Both validators must read values identically, so every pattern, bound and
status code they rely on lives here and nowhere else.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fourloops.definitions.fields import Rule

__all__ = [
    "BOOL_STRINGS",
    "DEFAULTED",
    "FLOAT_PATTERN",
    "FLOAT_SPECIAL_PATTERN",
    "INT64_MAX",
    "INT64_MIN",
    "INT_PATTERN",
    "NULL",
    "OK",
    "RULE_BY_CODE",
    "RULE_CODE",
    "TIMESTAMP_PATTERN",
    "TS_MAX_US",
    "TS_MIN_US",
    "UNKNOWN",
    "epoch_us",
]

# Per-field status codes. Codes below ``FIRST_RULE`` mean the value passed.
OK = 0  # a present, valid value
NULL = 1  # null in a nullable field without default
DEFAULTED = 2  # null replaced by the field's default
UNKNOWN = 3  # an unknown category kept (flag) or mapped (map)
FIRST_RULE = 10
RULE_CODE: dict[Rule, int] = {rule: FIRST_RULE + i for i, rule in enumerate(Rule)}
RULE_BY_CODE: dict[int, Rule] = {code: rule for rule, code in RULE_CODE.items()}

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# ``[0-9]`` rather than ``\d``: Python's ``\d`` also matches non-ASCII digits.
FLOAT_PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
FLOAT_SPECIAL_PATTERN = r"(?i)^[+-]?(inf|infinity|nan)$"
INT_PATTERN = r"^[+-]?[0-9]+$"
BOOL_STRINGS: dict[str, bool] = {"true": True, "false": False, "1": True, "0": False}
# Groups: year, month, day, hour, minute, second, fraction, offset.
TIMESTAMP_PATTERN = (
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2})"
    r"(?::([0-9]{2})(?:\.([0-9]{1,6}))?)?(Z|[+-][0-9]{2}:?[0-9]{2})?$"
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_us(value: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# The instants a Python datetime can hold: anything outside is a ``type`` error.
TS_MIN_US = epoch_us(datetime(1, 1, 1, tzinfo=UTC))
TS_MAX_US = epoch_us(datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC))

COMPILED_FLOAT = re.compile(FLOAT_PATTERN)
COMPILED_FLOAT_SPECIAL = re.compile(FLOAT_SPECIAL_PATTERN)
COMPILED_INT = re.compile(INT_PATTERN)
COMPILED_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)
