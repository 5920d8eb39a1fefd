from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sklearn.linear_model import LinearRegression

import fourloops as fl
from fourloops.definitions import format_duration, parse_duration
from fourloops.errors import DefinitionError


def weather_view(**overrides: object) -> fl.FeatureView:
    kwargs: dict[str, object] = {
        "entity": fl.Entity("airport", join_keys=["origin"]),
        "source": fl.FileSource("data/weather.parquet", timestamp="time_hour", created="ingested_at"),
        "ttl": "3h",
        "contract": fl.Contract(
            {"temp": fl.Float(min=-40, max=130), "visib": fl.Float(min=0, max=10)},
            null_tokens=["", "NA", "NULL"],
        ),
    }
    kwargs.update(overrides)
    return fl.FeatureView(name="weather", **kwargs)  # type: ignore[arg-type]


def test_issue_example_shape() -> None:
    view = weather_view()
    assert list(view.features) == ["temp", "visib"]
    assert view.ttl == timedelta(hours=3)
    assert view.source.format == "parquet"
    assert "weather" in repr(view)


def test_version_is_a_content_hash_of_meaning() -> None:
    a, b = weather_view(), weather_view()
    assert a.version == b.version and len(a.version) == 16
    assert weather_view(ttl="4h").version != a.version
    # Descriptions do not change meaning.
    described = weather_view(
        contract=fl.Contract(
            {"temp": fl.Float(min=-40, max=130, description="F"), "visib": fl.Float(min=0, max=10)},
            null_tokens=["NULL", "", "NA"],
        ),
        description="hourly",
    )
    assert described.version == a.version
    tightened = weather_view(
        contract=fl.Contract({"temp": fl.Float(min=-40, max=120), "visib": fl.Float(min=0, max=10)})
    )
    assert tightened.contract.version != a.contract.version


def test_transform_code_is_part_of_the_version() -> None:
    def celsius(df):  # type: ignore[no-untyped-def]
        return df

    def kelvin(df):  # type: ignore[no-untyped-def]
        return df.with_columns()

    a = weather_view(transform=celsius, derived={"temp_c": fl.Float()})
    b = weather_view(transform=kelvin, derived={"temp_c": fl.Float()})
    assert a.version != b.version
    assert "temp_c" in a.features


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: fl.Float(min=5, max=1), "min 5 is greater than max 1"),
        (lambda: fl.Float(min="a"), "min must be a number"),
        (lambda: fl.Int(min=1.5), "min must be an integer"),
        (lambda: fl.Category([]), "must not be empty"),
        (lambda: fl.Category("abc"), "list of strings"),
        (lambda: fl.Category(["a"], unknown="drop"), "unknown must be one of"),
        (lambda: fl.String(max_length=-1), "max_length"),
        (lambda: fl.Timestamp(min=datetime(2020, 1, 1)), "timezone-aware"),
        (lambda: fl.Contract({}), "non-empty mapping"),
        (lambda: fl.Contract({"a": int}), "must be a field type"),
        (lambda: fl.Contract({"a": fl.Int()}, null_tokens=[3]), "null token 3"),
        (lambda: fl.Contract({"a": fl.Int()}, extra="maybe"), "extra must be"),
        (lambda: fl.Entity("a", join_keys=[]), "join_keys"),
        (lambda: fl.Entity("1bad", join_keys=["k"]), "name '1bad'"),
        (lambda: fl.FileSource("x.json", timestamp="t"), "cannot tell the format"),
        (lambda: fl.FileSource("x.parquet", timestamp=""), "timestamp= must name"),
        (lambda: weather_view(ttl="3 lightyears"), "cannot parse"),
        (lambda: weather_view(ttl=-5), "must be positive"),
        (lambda: weather_view(entity="airport"), "entity must be an fl.Entity"),
        (lambda: weather_view(transform=lambda d: d), "declare the columns"),
        (lambda: weather_view(derived={"x": fl.Float()}), "derived fields need a transform"),
    ],
)
def test_bad_definitions_fail_clearly(make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DefinitionError, match=message):
        make()


def test_nan_token_sets_nan_is_null() -> None:
    assert fl.Contract({"a": fl.Float()}, null_tokens=["NaN"]).nan_is_null
    assert fl.Contract({"a": fl.Float()}, null_tokens=[float("nan")]).nan_is_null
    assert not fl.Contract({"a": fl.Float()}, null_tokens=[""]).nan_is_null


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3h", timedelta(hours=3)),
        ("1d12h", timedelta(hours=36)),
        ("90s", timedelta(seconds=90)),
        ("250ms", timedelta(milliseconds=250)),
        (timedelta(minutes=5), timedelta(minutes=5)),
        (60, timedelta(minutes=1)),
    ],
)
def test_parse_duration(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected  # type: ignore[arg-type]
    assert parse_duration(format_duration(expected)) == expected


def test_timestamp_bounds_serialise() -> None:
    field = fl.Timestamp(min=datetime(2013, 1, 1, tzinfo=UTC))
    assert field.to_dict()["min"] == "2013-01-01T00:00:00+00:00"


def test_rollout_checks_refuse_what_cannot_be_measured() -> None:
    with pytest.raises(DefinitionError, match="estimate=True works for brier, error, log_loss"):
        fl.Check("fallback", margin=0.01, estimate=True)
    with pytest.raises(DefinitionError, match="margin 0 give tau"):
        fl.Check("error")
    with pytest.raises(DefinitionError, match="check error is given twice"):
        fl.Rollout(checks=[fl.Check("error", margin=0.01), fl.Check("error", margin=0.02)])
    both = fl.Rollout(checks=[fl.Check("error", margin=0.01), fl.Check("error", margin=0.01, estimate=True)])
    assert [c.name for c in both.checks] == ["error", "estimated_error"]
    assert not both.checks[1].needs_labels and both.checks[0].needs_labels
    assert fl.Check(**both.checks[1].to_dict()) == both.checks[1]  # stored policies read back


def test_an_estimated_check_needs_a_binary_classifier() -> None:
    rollout = fl.Rollout(checks=[fl.Check("brier", margin=0.01, estimate=True)])
    with pytest.raises(DefinitionError, match=r"estimate=True\) needs a binary classifier"):
        fl.Model(
            "price", task="regression", entities=fl.FileSource("x.parquet", timestamp="at"),
            label=fl.Label("y"), trainer=LinearRegression(), request=fl.Contract({"x": fl.Float()}),
            rollout=rollout,
        )  # fmt: skip
