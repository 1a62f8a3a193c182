"""Free-text columns as numbers: TF-IDF of character n-grams, reduced to a few components by truncated SVD.

``TextEncoder`` is the baseline's encoder for columns the explore step calls ``text`` (titles, names,
comments): strings that are mostly distinct and share sub-strings, where an ordinal or one-hot
encoder would keep only the few hundred most frequent values. Character n-grams carry what the
values share (words, stems, prefixes, titles such as "Mr" or "Jr"); the SVD turns thousands of
sparse n-gram weights into ``n_components`` dense numbers every model of the zoo can use.

It is the recipe of skrub's ``StringEncoder`` (TF-IDF on 3-4 character n-grams within word
boundaries, then ``TruncatedSVD``), written with scikit-learn's own ``TfidfVectorizer`` and
``TruncatedSVD`` so a saved model needs no extra dependency and skops trusts one more type only
(``mlhelpers.core.text.TextEncoder``), and so missing values (no text) become an empty string
inside the pipeline rather than an error.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

__all__ = ["TextEncoder", "TEXT_COMPONENTS"]

# Components kept per text column: skrub's StringEncoder default, a size every model of the zoo fits quickly.
TEXT_COMPONENTS = 30
# An n-gram must occur in this many rows to be kept: n-grams of a single row cannot generalise and
# only slow the SVD down.
MIN_DOCUMENT_ROWS = 2
# The most frequent n-grams kept per column: bounds memory and model size on long texts.
MAX_NGRAMS = 50_000


def _as_text(column: pd.Series) -> list[str]:
    """Each value as a string; missing values become "" (no text)."""
    values = column.astype(object)
    return ["" if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA
            else str(value) for value in values]


class TextEncoder(TransformerMixin, BaseEstimator):
    """Each text column as ``n_components`` numbers: TF-IDF of character n-grams, then truncated SVD.

    Parameters
    ----------
    n_components : components per column (fewer when a column has fewer distinct n-grams).
    ngram_range : character n-gram lengths, within word boundaries (``analyzer="char_wb"``).
    random_state : seed of the randomized SVD.

    A column whose training values hold no n-gram seen in ``MIN_DOCUMENT_ROWS`` rows (empty, or all
    distinct characters) gives one column of zeros. Learned attributes: ``vectorizers_`` and
    ``svds_`` (one per column, None for such a column), ``feature_names_in_``, ``n_features_in_``.
    """

    def __init__(self, n_components: int = TEXT_COMPONENTS, ngram_range: tuple[int, int] = (3, 4),
                 random_state: int | None = None):
        self.n_components = n_components
        self.ngram_range = ngram_range
        self.random_state = random_state

    def fit(self, X, y=None) -> "TextEncoder":
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X, y=None) -> np.ndarray:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer
        from threadpoolctl import threadpool_limits

        if not isinstance(self.n_components, int) or self.n_components < 1:
            raise ValueError(f"TextEncoder: n_components must be a positive integer, got {self.n_components!r}.")
        frame = pd.DataFrame(X)
        self.feature_names_in_ = np.asarray([str(c) for c in frame.columns], dtype=object)
        self.n_features_in_ = frame.shape[1]
        self.vectorizers_, self.svds_, blocks = [], [], []
        for column in frame.columns:
            texts = _as_text(frame[column])
            vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(self.ngram_range), lowercase=True,
                                         min_df=min(MIN_DOCUMENT_ROWS, len(texts)), max_features=MAX_NGRAMS,
                                         sublinear_tf=True, dtype=np.float64)
            try:
                weights = vectorizer.fit_transform(texts)
            except ValueError:  # "empty vocabulary": no n-gram occurs in two rows
                self.vectorizers_.append(None)
                self.svds_.append(None)
                blocks.append(np.zeros((len(texts), 1)))
                continue
            # TruncatedSVD needs fewer components than n-grams; randomized: fast and seeded
            n_components = max(1, min(self.n_components, weights.shape[1] - 1, weights.shape[0] - 1))
            svd = TruncatedSVD(n_components=n_components, algorithm="randomized", random_state=self.random_state)
            # One BLAS thread: the randomized SVD's dense products are small, and BLAS threads busy-wait when other
            # processes share the cores (Tate titles, 800 rows: 3.4 s on two threads vs 0.14 s on one under load;
            # MovieLens titles, 100k rows: 10.2 s vs 5.7 s).
            with np.errstate(invalid="ignore", divide="ignore"), threadpool_limits(1, user_api="blas"):
                blocks.append(svd.fit_transform(weights))  # explained variance ratio of identical texts: 0/0
            self.vectorizers_.append(vectorizer)
            self.svds_.append(svd)
        return np.hstack(blocks) if blocks else np.empty((len(frame), 0))

    def transform(self, X) -> np.ndarray:
        check_is_fitted(self, "vectorizers_")
        frame = pd.DataFrame(X)
        if frame.shape[1] != self.n_features_in_:
            raise ValueError(f"TextEncoder was fitted on {self.n_features_in_} columns, got {frame.shape[1]}.")
        blocks = []
        for column, vectorizer, svd in zip(frame.columns, self.vectorizers_, self.svds_):
            if vectorizer is None:
                blocks.append(np.zeros((len(frame), 1)))
            else:
                blocks.append(svd.transform(vectorizer.transform(_as_text(frame[column]))))
        return np.hstack(blocks) if blocks else np.empty((len(frame), 0))

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "vectorizers_")
        names = self.feature_names_in_ if input_features is None else input_features
        out = []
        for name, svd in zip(names, self.svds_):
            width = 1 if svd is None else svd.n_components
            out.extend(f"{name}_text{i}" for i in range(width))
        return np.asarray(out, dtype=object)

    # Each vectorizer's vocabulary (n-gram -> column, up to MAX_NGRAMS entries) is saved as one array of
    # n-grams in column order: skops writes a dict entry by entry and rebuilds it node by node, which made
    # a model of 8,000 film titles 24 MB and its load take minutes; one array loads in milliseconds.
    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        if "vectorizers_" not in state:
            return state
        vectorizers, vocabularies = [], []
        for vectorizer in state["vectorizers_"]:
            if vectorizer is None or not hasattr(vectorizer, "vocabulary_"):
                vectorizers.append(vectorizer)
                vocabularies.append(None)
                continue
            bare = copy.copy(vectorizer)
            vocabulary = bare.__dict__.pop("vocabulary_")
            terms = np.empty(len(vocabulary), dtype=object)
            for term, index in vocabulary.items():
                terms[index] = term
            vectorizers.append(bare)
            vocabularies.append(terms.astype(str))
        return state | {"vectorizers_": vectorizers, "vocabularies_": vocabularies}

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        vocabularies = state.pop("vocabularies_", None)
        super().__setstate__(state)
        for vectorizer, terms in zip(getattr(self, "vectorizers_", []), vocabularies or []):
            if vectorizer is not None and terms is not None:
                vectorizer.vocabulary_ = {str(term): index for index, term in enumerate(terms)}

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = True
        return tags
