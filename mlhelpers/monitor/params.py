"""The monitor notebook's parameters (``notebooks/05_monitor.ipynb``, ``mlh drift``): one typed schema.

Validated like the pipeline's (``mlhelpers.core.params.validate_notebook_params(globals(), MonitorParams)``):
unknown keys with a "did you mean" hint, wrong types and impossible thresholds fail naming the key.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mlhelpers.core.params import resolve_path
from mlhelpers.monitor.drift import Thresholds

__all__ = ["MonitorParams"]


class MonitorParams(BaseModel):
    """Every parameter of a drift check; relative paths start at the project root."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    model_dir: str = Field("runs/interactive/model", description="an exported model folder (holds reference.json and input_schema.json)")
    new_data_path: str = Field("data/credit.csv", description="the new data file: CSV, Parquet, Excel, JSON lines, SQLite or DuckDB")
    new_data_query: str | None = Field(None, description="SQL query, required when new_data_path is a SQLite or DuckDB database")
    output_dir: str = Field("runs/interactive/monitor", description="folder for drift_report.json and the figures")
    psi_threshold: float = Field(0.2, gt=0, description="PSI at or above this is a shift (0.1 moderate, 0.25 major)")
    wasserstein_threshold: float = Field(0.1, gt=0, description="numbers: Wasserstein distance in reference standard deviations")
    jensen_shannon_threshold: float = Field(0.1, gt=0, le=1, description="categories: Jensen-Shannon distance, 0 to 1")
    p_value_threshold: float = Field(0.01, gt=0, lt=1, description="a shift also needs a chi-square p-value below this")
    seed: int = Field(42, ge=0, description="drives the sample of rows the predictions are checked on")

    @field_validator("model_dir", "new_data_path", "output_dir")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @property
    def model_path(self) -> Path:
        return resolve_path(self.model_dir)

    @property
    def new_data_file(self) -> Path:
        return resolve_path(self.new_data_path)

    @property
    def output_path(self) -> Path:
        return resolve_path(self.output_dir)

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(psi=self.psi_threshold, wasserstein=self.wasserstein_threshold,
                          jensen_shannon=self.jensen_shannon_threshold, p_value=self.p_value_threshold)
