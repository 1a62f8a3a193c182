"""Benchmark (issue 14): what one training row costs a Dask worker under ``xgboost.dask`` (DaskQuantileDMatrix, hist,
max_bin 256), the figure ``mlhelpers.baseline.trainmemory.bytes_per_training_row`` is built on: one worker, float32
partitions of F features and a label made on the worker (as ``fulldata.design_partition`` makes them), the worker's
peak resident memory after 20 rounds minus its memory before, at two row counts; the slope is the cost of a row.

    nice .venv/bin/python benchmarks/xgb_row_bytes.py 25 500000,2000000     # F=25: 211 bytes a row (F=10: 120)
"""
import json, resource, sys, time
import numpy as np, pandas as pd
import dask, dask.dataframe as dd
from distributed import LocalCluster, Client
import xgboost.dask as dxgb

F = int(sys.argv[1]) if len(sys.argv) > 1 else 25
SIZES = [int(x) for x in (sys.argv[2] if len(sys.argv) > 2 else "500000,2000000").split(",")]
PART = 250_000

def make(i, n):
    rng = np.random.default_rng(i)
    X = rng.normal(size=(n, F)).astype("float32")
    X[:, :5] = np.round(X[:, :5] * 3)  # a few low-cardinality columns, like codes
    out = pd.DataFrame(X, columns=[f"f{j}" for j in range(F)])
    out["label"] = (X[:, 0] + rng.normal(size=n) > 0).astype("float32")
    return out

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

def rss():
    import psutil
    return psutil.Process().memory_info().rss

def main():
    results = []
    for rows in SIZES:
        with LocalCluster(n_workers=1, threads_per_worker=1, memory_limit="8GB", processes=True, dashboard_address=":0") as cluster, Client(cluster) as client:
            client.run(lambda: __import__("xgboost"))
            before = list(client.run(rss).values())[0]
            nparts = rows // PART
            meta = make(0, 0)
            ddf = dd.from_delayed([dask.delayed(make)(i, PART) for i in range(nparts)], meta=meta)
            t = time.time()
            d = dxgb.DaskQuantileDMatrix(client, ddf.drop(columns="label"), ddf["label"], max_bin=256)
            out = dxgb.train(client, {"tree_method": "hist", "objective": "binary:logistic", "nthread": 1, "verbosity": 0, "max_bin": 256, "max_depth": 6},
                             d, num_boost_round=20)
            top = list(client.run(peak).values())[0]
            results.append({"rows": rows, "F": F, "before_mb": before / 1e6, "peak_mb": top / 1e6,
                            "bytes_per_row": (top - before) / rows, "seconds": time.time() - t})
            print(results[-1], flush=True)
    if len(results) > 1:
        a, b = results[0], results[-1]
        print("slope bytes/row:", (b["peak_mb"] - a["peak_mb"]) * 1e6 / (b["rows"] - a["rows"]))
        print("estimate (trainmemory):", __import__("mlhelpers.baseline.trainmemory", fromlist=["x"]).bytes_per_training_row(F))


if __name__ == "__main__":
    main()
