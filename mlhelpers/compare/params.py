"""The compare notebook's parameters (``notebooks/04_compare.ipynb``, ``mlh compare``): one typed schema.

Validated like the pipeline's (``mlhelpers.core.params.validate_notebook_params(globals(), CompareParams)``):
unknown keys with a "did you mean" hint and wrong types fail naming the key.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mlhelpers.core.params import resolve_path

__all__ = ["CompareParams"]


class CompareParams(BaseModel):
    """Every parameter of a comparison; relative paths start at the project root."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    run_dirs: list[str] = Field(default_factory=lambda: ["runs/interactive"], min_length=1,
                                description="run folders to compare, or one sweep folder (holding sweep.json)")
    output_dir: str = Field("runs/interactive/compare", description="folder for comparison.csv and the figures")

    @field_validator("output_dir")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("run_dirs")
    @classmethod
    def _no_blank_entry(cls, values: list[str]) -> list[str]:
        if any(not value.strip() for value in values):
            raise ValueError("an entry is empty; list run folders such as runs/demo/<run-id>")
        return values

    @property
    def run_paths(self) -> list[Path]:
        return [resolve_path(path) for path in self.run_dirs]

    @property
    def output_path(self) -> Path:
        return resolve_path(self.output_dir)
