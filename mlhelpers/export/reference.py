"""The training data's compact reference for later drift checks: ``model/reference.json``.

Per input column its quantiles and shares on 20 equal-mass bins (numbers, dates) or its category
frequencies, and its missing rate; and the distribution of the model's predictions on the test split.
No row is stored. ``mlh drift`` (``mlhelpers.monitor``) compares new data with it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlhelpers.core.artifacts import artifact_path, read_artifact, write_json
from mlhelpers.core.reference import build_reference
from mlhelpers.export.refit import ExportData
from mlhelpers.formats.served import predict_rows

__all__ = ["write_reference"]


def write_reference(run_dir: str | Path, data: ExportData, pipeline) -> pd.DataFrame:
    """Summarize the training rows and the test split's predictions (``mlhelpers.core.reference``) into
    ``model/reference.json`` (after ``input_schema.json``, whose column kinds it follows); return one row per
    column: kind, missing rate and a glimpse of the summary."""
    schema = read_artifact(run_dir, "input_schema")
    predictions = predict_rows(pipeline, data.X_test, schema)
    reference = build_reference(data.X_train, schema, predictions)
    write_json(artifact_path(run_dir, "reference"), reference)
    rows = []
    for name, summary in [*reference["columns"].items(), ("prediction: " + reference["prediction"]["column"], reference["prediction"])]:
        if summary["kind"] == "categorical":
            top = sorted(summary["categories"].items(), key=lambda item: -item[1])[:3]
            glimpse = ", ".join(f"{key}: {share:.0%}" for key, share in top) + (
                f" (+{summary['n_categories'] - len(top)} more)" if summary["n_categories"] > len(top) else "")
        elif summary["quantiles"]:
            q = summary["quantiles"]
            glimpse = f"median {_number(q[50], summary['kind'])}, 5-95%: {_number(q[5], summary['kind'])} to {_number(q[95], summary['kind'])}"
        else:
            glimpse = "no value"
        rows.append({"column": name, "kind": summary["kind"], "rows": summary["n"],
                     "missing_rate": summary["missing_rate"], "summary": glimpse})
    return pd.DataFrame(rows).set_index("column")


def _number(value: float, kind: str) -> str:
    return str(pd.Timestamp(value, unit="s").date()) if kind == "datetime" else f"{value:.4g}"
