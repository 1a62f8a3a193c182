"""Parity: regression and probability bounds, exact labels, ties reported apart, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from mlhelpers.formats.parity import ParityError, assert_parity, check_parity


class Shifted:
    """A candidate whose predictions are the reference's plus ``shift``."""

    def __init__(self, reference, shift):
        self.reference, self.shift = reference, shift

    def predict(self, frame):
        return self.reference.predict(frame) + self.shift


class Flipped:
    """A classifier candidate that flips the first label (if ``flip``) and shifts its probabilities."""

    def __init__(self, reference, proba_shift=0.0, flip=True):
        self.reference, self.proba_shift, self.flip = reference, proba_shift, flip

    def predict(self, frame):
        labels = self.reference.predict(frame).copy()
        if self.flip:
            labels[0] = 1 - labels[0]
        return labels

    def predict_proba(self, frame):
        return self.reference.predict_proba(frame) + self.proba_shift


def test_parity_bounds_for_regression(diamonds, fit_pipeline, diamond_features):
    pipeline = fit_pipeline("linear", "regression", diamonds, diamond_features, diamonds["price"].to_numpy(float))
    assert check_parity(pipeline, Shifted(pipeline, 1e-7), diamonds, "regression").ok  # within 1e-6 of max(|y|, 1)
    broken = check_parity(pipeline, Shifted(pipeline, 5.0), diamonds, "regression", name="onnx")
    assert not broken.ok and broken.max_abs_diff == pytest.approx(5.0)
    with pytest.raises(ParityError, match=r"onnx predictions differ.*max difference 5"):
        assert_parity(broken)
    assert check_parity(pipeline, Shifted(pipeline, 5.0), diamonds, "regression", tolerance=5.0).ok


def test_parity_requires_exact_labels_and_close_probabilities(credit, credit_forest):
    labels = check_parity(credit_forest, Flipped(credit_forest), credit, "classification", name="skops")
    assert not labels.ok and labels.label_mismatches == 1
    with pytest.raises(ParityError, match="skops.*1 label mismatches"):
        assert_parity(labels)
    assert labels.max_abs_diff == 0.0
    shifted = check_parity(credit_forest, Flipped(credit_forest, 1e-3, flip=False), credit,
                           "classification")
    assert shifted.label_mismatches == 0 and not shifted.ok and shifted.max_abs_diff == pytest.approx(1e-3)


def test_parity_input_errors(credit, credit_forest):
    with pytest.raises(ValueError, match="task must be"):
        check_parity(credit_forest, credit_forest, credit, "ranking")
    with pytest.raises(ValueError, match="at least one row"):
        check_parity(credit_forest, credit_forest, credit.iloc[:0], "classification")


class Constant:
    """A classifier stub: every row gets ``label`` with probabilities ``proba``."""

    def __init__(self, label, proba):
        self.label, self.proba = label, np.asarray(proba, dtype=float)

    def predict(self, frame):
        return np.full(len(frame), self.label)

    def predict_proba(self, frame):
        return np.tile(self.proba, (len(frame), 1))


def test_label_flips_on_exact_ties_are_reported_apart(credit):
    frame = credit.iloc[:20]
    tie = check_parity(Constant(0, [0.5, 0.5]), Constant(1, [0.5, 0.5]), frame, "classification")
    assert tie.ok and tie.label_mismatches == 0 and tie.tied_mismatches == 20
    clear = check_parity(Constant(0, [0.6, 0.4]), Constant(1, [0.6, 0.4]), frame, "classification")
    assert not clear.ok and clear.label_mismatches == 20 and clear.tied_mismatches == 0
