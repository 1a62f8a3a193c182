"""The drift check of a new file against an exported model: read it with the one reader, check it against the
input schema, compare every input column and the predictions with ``model/reference.json``, and write
``drift_report.json`` with a one-paragraph summary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mlhelpers.core.artifacts import SCHEMA_VERSION, artifact_file, artifact_path, write_json
from mlhelpers.core.io import load_table, read_columns
from mlhelpers.core.reference import prediction_column
from mlhelpers.core.schema import SchemaError, check_rows
from mlhelpers.core.values import apply_conversions
from mlhelpers.core.tables import seeded_sample
from mlhelpers.formats.served import load_model_dir, predict_rows
from mlhelpers.monitor import MonitorError
from mlhelpers.monitor.drift import ColumnDrift, Thresholds, column_drift

__all__ = ["DriftResult", "load_reference", "check_inputs", "check_drift", "write_drift_report"]

PREDICTION_ROWS = 100_000   # rows scored for the prediction check at most (a seeded sample above that)
_SHOWN_REASONS = 5


@dataclass
class DriftResult:
    """Every column's comparison, the predictions', and what the schema check refused."""

    columns: dict[str, ColumnDrift]
    prediction: ColumnDrift | None
    n_rows: int
    n_rejected: int
    reject_reasons: dict[str, int]
    thresholds: Thresholds
    reference_rows: int
    model_dir: Path
    new_file: Path
    notes: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return any(c.drifted for c in self.columns.values()) or bool(self.prediction and self.prediction.drifted)

    @property
    def drifted_columns(self) -> list[str]:
        return [name for name, column in self.columns.items() if column.drifted]

    def table(self) -> pd.DataFrame:
        """One row per column, drifted first, then by PSI: the test, its figures and the missing rates."""
        rows = [{"column": name, "drifted": c.drifted, "role": c.role, "test": c.test, "statistic": c.statistic,
                 "p_value": c.p_value, "psi": c.psi, "missing_rate": c.missing_rate,
                 "reference_missing_rate": c.reference_missing_rate,
                 "unseen_categories": ", ".join(map(str, c.unseen_categories)), "why": "; ".join(c.reasons)}
                for name, c in self.columns.items()]
        table = pd.DataFrame(rows).set_index("column")
        return table.sort_values(["drifted", "psi"], ascending=[False, False], kind="stable")

    def schema_table(self) -> pd.DataFrame:
        """Rows read, rows the input schema refuses (as ``mlh predict`` would) and the commonest reasons."""
        rows = {"rows in the new file": self.n_rows, "rows the input schema refuses": self.n_rejected,
                "reference (training) rows": self.reference_rows}
        rows |= {f"refused: {reason}": count for reason, count in self.reject_reasons.items()}
        return pd.DataFrame({"value": list(rows.values())}, index=list(rows))

    def prediction_table(self) -> pd.DataFrame:
        """The prediction distribution's comparison with the test split's, one row."""
        if self.prediction is None:
            return pd.DataFrame({"note": ["no row passes the input schema: nothing to predict"]})
        p = self.prediction
        return pd.DataFrame([{"drifted": p.drifted, "test": p.test, "statistic": p.statistic, "p_value": p.p_value,
                              "psi": p.psi, "rows": p.n_rows, "why": "; ".join(p.reasons)}], index=[p.name])

    def summary(self) -> str:
        """One paragraph for a reader: what was checked, what moved, what to do."""
        t = self.thresholds
        parts = [f"Checked {self.n_rows:,} rows of {self.new_file.name} against the reference of "
                 f"{self.reference_rows:,} training rows."]
        drifted = [(name, c) for name, c in self.columns.items() if c.drifted]
        if drifted:
            shown = ", ".join(f"{name} ({_effect(c)})" for name, c in drifted)
            parts.append(f"{len(drifted)} of {len(self.columns)} columns drifted: {shown}.")
        else:
            top = max(self.columns.items(), key=lambda item: item[1].psi or 0.0)
            parts.append(f"None of the {len(self.columns)} columns drifted (largest PSI {top[1].psi:.3f}, {top[0]}).")
        moved = [f"{name} ({c.reference_missing_rate:.0%} -> {c.missing_rate:.0%})" for name, c in self.columns.items()
                 if abs(c.missing_rate - c.reference_missing_rate) >= 0.05]
        if moved:
            parts.append(f"Missing rates moved in {', '.join(moved)}.")
        unseen = {name: c.unseen_categories for name, c in self.columns.items() if c.unseen_categories}
        if unseen:
            parts.append("Unseen categories: " + "; ".join(
                f"{name}: {', '.join(map(repr, values[:5]))}" for name, values in unseen.items()) + ".")
        if self.prediction is not None:
            parts.append(f"The predictions {'drifted too' if self.prediction.drifted and drifted else 'drifted' if self.prediction.drifted else 'did not drift'}"
                         f" (PSI {self.prediction.psi:.3f} against the test split).")
        if self.n_rejected:
            parts.append(f"{self.n_rejected:,} rows break the input schema; `mlh predict` would refuse them.")
        parts.append(f"A column drifts when PSI >= {t.psi:g} or the Wasserstein distance >= {t.wasserstein:g} "
                     f"standard deviations (Jensen-Shannon >= {t.jensen_shannon:g} for categories), with a "
                     f"chi-square p-value below {t.p_value:g}.")
        if self.drifted:
            parts.append("Look at the figures of the drifted columns; if the change is real and lasting, retrain on "
                         "recent data (rerun the pipeline on it).")
        return " ".join(parts + self.notes)


def _effect(column: ColumnDrift) -> str:
    unit = " sd" if column.test == "wasserstein" else ""
    name = "Wasserstein" if column.test == "wasserstein" else "Jensen-Shannon"
    statistic = f", {name} {column.statistic:.2f}{unit}" if column.statistic is not None else ""
    return f"PSI {column.psi:.2f}{statistic}"


def load_reference(model_dir: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``reference.json`` and ``input_schema.json`` of an exported model folder; ``MonitorError`` naming the
    fix when the folder is not one, or was exported before reference.json existed."""
    model_dir = Path(model_dir)
    files = {name: model_dir / artifact_file(name) for name in ("reference", "input_schema")}
    if not files["input_schema"].is_file():
        raise MonitorError(f"{model_dir} is not an exported model folder ({artifact_file('input_schema')} is missing); "
                           "pass <run folder>/model after the export step (notebooks/03_export.ipynb) ran.")
    if not files["reference"].is_file():
        raise MonitorError(f"{model_dir} has no {artifact_file('reference')} (it was exported before drift checks "
                           "existed): rerun the export step, e.g. `mlh run <params> --steps export --from <run folder>`.")
    loaded = {name: json.loads(path.read_text(encoding="utf-8")) for name, path in files.items()}
    for name, payload in loaded.items():
        if payload.get("schema_version") != SCHEMA_VERSION:
            raise MonitorError(f"{files[name]} has schema_version {payload.get('schema_version')!r}, this code reads "
                               f"{SCHEMA_VERSION}; rerun the export step.")
    return loaded["reference"], loaded["input_schema"]


def check_inputs(model_dir: str | Path, new_file: str | Path, query: str | None = None) -> None:
    """Refuse, before any work, a model folder without a reference or a new file lacking the model's columns."""
    _, schema = load_reference(model_dir)
    new_file = Path(new_file)
    if not new_file.exists():
        raise MonitorError(f"new data file {new_file} does not exist; pass the file to check (CSV, Parquet, "
                           "Excel, JSON lines, or a SQLite/DuckDB database with a query).")
    columns = read_columns(new_file, query=query)
    missing = [name for name in schema["columns"] if name not in columns]
    if missing:
        raise SchemaError(f"{new_file.name} lacks column(s) {missing} that the model needs; every file checked "
                          f"must have the columns {list(schema['columns'])} (extra columns are ignored).")


def check_drift(model_dir: str | Path, new_file: str | Path, query: str | None = None,
                thresholds: Thresholds = Thresholds(), seed: int = 42) -> DriftResult:
    """Compare ``new_file`` (every format ``mlh run`` reads) with the model folder's reference: each input
    column, and the model's predictions on (a seeded sample of up to 100,000 of) the rows that pass the input
    schema against its predictions on the test split."""
    model_dir, new_file = Path(model_dir), Path(new_file)
    reference, schema = load_reference(model_dir)
    frame = load_table(new_file, query=query)
    if frame.empty:
        raise MonitorError(f"{new_file} holds no rows: nothing to check.")
    check = check_rows(frame, schema)  # SchemaError when columns are missing
    # The columns as training read them ("yes"/"no" as booleans, "12.7 mph" as numbers): the reference holds
    # converted values, and raw text against them drifted on the training file itself.
    read = apply_conversions(frame, schema.get("conversions") or {})
    columns = {name: column_drift(name, read[name], reference["columns"][name], info, thresholds)
               for name, info in schema["columns"].items()}
    # one count per kind of reason ("Home: unseen category"), not per value
    reasons = check.rejects["reason"].astype(str).str.split("; ").explode().str.replace(r" '.*'| \(known.*", "", regex=True)
    prediction, notes = None, []
    if len(check.valid):
        model, _ = load_model_dir(model_dir)
        rows = seeded_sample(check.valid, PREDICTION_ROWS, seed)
        if len(rows) < len(check.valid):
            notes.append(f"The prediction check used a seeded sample of {len(rows):,} rows.")
        predictions = predict_rows(model, rows, schema)
        column, _ = prediction_column(schema)
        prediction = column_drift(f"prediction ({column})", predictions[column], reference["prediction"], None, thresholds)
    return DriftResult(columns=columns, prediction=prediction, n_rows=len(frame), n_rejected=len(check.rejects),
                       reject_reasons=reasons.value_counts().head(_SHOWN_REASONS).to_dict(), thresholds=thresholds,
                       reference_rows=int(reference["n_rows"]), model_dir=model_dir, new_file=new_file, notes=notes)


def write_drift_report(result: DriftResult, output_dir: str | Path) -> pd.DataFrame:
    """Write ``drift_report.json`` into ``output_dir``; return a one-row table of the verdict."""
    path = write_json(artifact_path(output_dir, "drift_report"), {
        "drifted": result.drifted, "n_rows": result.n_rows,
        "columns": {name: column.as_dict() for name, column in result.columns.items()},
        "prediction": result.prediction.as_dict() | {"n_rows": result.prediction.n_rows} if result.prediction else None,
        "drifted_columns": result.drifted_columns, "n_rejected": result.n_rejected,
        "reject_reasons": result.reject_reasons, "reference_rows": result.reference_rows,
        "thresholds": {"psi": result.thresholds.psi, "wasserstein": result.thresholds.wasserstein,
                       "jensen_shannon": result.thresholds.jensen_shannon, "p_value": result.thresholds.p_value},
        "model_dir": str(result.model_dir), "new_file": str(result.new_file), "summary": result.summary()})
    return pd.DataFrame({"drifted": [result.drifted], "drifted columns": [", ".join(result.drifted_columns) or "none"],
                         "prediction drifted": [bool(result.prediction and result.prediction.drifted)],
                         "report": [path.name]})
