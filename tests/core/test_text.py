"""TextEncoder on real free text (Tate artwork titles): numbers per column, missing text, seeds, errors."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from mlhelpers.core.text import TEXT_COMPONENTS, TextEncoder


@pytest.fixture(scope="module")
def titles(tate):
    return tate[["title", "medium"]].head(1500).reset_index(drop=True)


def test_each_column_becomes_its_components_and_missing_text_is_empty(titles):
    frame = titles.copy()
    frame.loc[:9, "title"] = np.nan
    encoder = TextEncoder(random_state=0)
    out = encoder.fit_transform(frame)
    assert out.shape == (len(frame), 2 * TEXT_COMPONENTS) and np.isfinite(out).all()
    assert np.allclose(out[:10, :TEXT_COMPONENTS], 0)  # no text: no n-gram, the zero vector
    assert np.allclose(encoder.transform(frame), out)
    names = encoder.get_feature_names_out()
    assert names[0] == "title_text0" and names[-1] == f"medium_text{TEXT_COMPONENTS - 1}"


def test_similar_titles_land_close_and_unseen_titles_are_encoded(titles):
    encoder = TextEncoder(random_state=0).fit(titles[["title"]])
    probe = pd.DataFrame({"title": ["Study for a Portrait", "Study for Portrait", "Untitled", "zzzz qqqq"]})
    z = encoder.transform(probe)
    near, far = np.linalg.norm(z[0] - z[1]), np.linalg.norm(z[0] - z[2])
    assert near < far
    assert np.isfinite(z).all()


def test_the_seed_makes_it_reproducible_and_clone_keeps_parameters(titles):
    a = TextEncoder(random_state=3).fit_transform(titles[["title"]])
    b = clone(TextEncoder(random_state=3)).fit_transform(titles[["title"]])
    assert np.array_equal(a, b)


def test_a_column_without_shared_ngrams_gives_zeros_and_small_vocabularies_fewer_components():
    frame = pd.DataFrame({"empty": [None] * 6, "tiny": ["abcd", "abcd", "abce", "abce", "abcd", "xyz"]})
    encoder = TextEncoder(random_state=0).fit(frame)
    out = encoder.transform(frame)
    assert encoder.vectorizers_[0] is None and np.allclose(out[:, 0], 0)
    assert out.shape[1] == 1 + encoder.svds_[1].n_components < 1 + TEXT_COMPONENTS


def test_errors_name_the_problem():
    frame = pd.DataFrame({"t": ["a b c"] * 5})
    with pytest.raises(ValueError, match="n_components must be a positive integer"):
        TextEncoder(n_components=0).fit(frame)
    fitted = TextEncoder().fit(frame)
    with pytest.raises(ValueError, match="fitted on 1 columns, got 2"):
        fitted.transform(frame.assign(u="x"))


def test_skops_stores_the_vocabulary_as_one_array_and_loads_it_back(titles):
    """skops writes a dict entry by entry: a vocabulary of thousands of n-grams made the file ~20x its pickle
    and its load take minutes. Saved as one array of n-grams, the file is about the pickle's size."""
    import pickle

    import skops.io as sio

    encoder = TextEncoder(random_state=0).fit(titles)
    state = encoder.__getstate__()
    assert [terms.dtype.kind for terms in state["vocabularies_"]] == ["U", "U"]
    assert all(not hasattr(v, "vocabulary_") for v in state["vectorizers_"]) and hasattr(encoder.vectorizers_[0], "vocabulary_")
    payload = sio.dumps(encoder)
    assert len(payload) < 1.5 * len(pickle.dumps(encoder))
    loaded = sio.loads(payload, trusted=["mlhelpers.core.text.TextEncoder"])
    assert [v.vocabulary_ for v in loaded.vectorizers_] == [v.vocabulary_ for v in encoder.vectorizers_]
    assert np.array_equal(loaded.transform(titles), encoder.transform(titles))
