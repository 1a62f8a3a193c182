"""Our SimpleImputer, OneHotEncoder and OrdinalEncoder converters: missing-value indicators, doubles
throughout, string missing values, unknown and infrequent categories as scikit-learn encodes them;
and a clear refusal for ``TextEncoder`` (free text), which no ONNX graph reproduces exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def register() -> None:
    """Register the imputer and encoder converters (replacing skl2onnx's)."""
    from skl2onnx import update_registered_converter
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    from mlhelpers.core.text import TextEncoder

    update_registered_converter(SimpleImputer, "SklearnSimpleImputer", _imputer_shape,
                                _convert_imputer, overwrite=True)
    update_registered_converter(TextEncoder, "MlhTextEncoder", _refuse_text_shape, _refuse_text, overwrite=True)
    for encoder, alias in ((OneHotEncoder, "SklearnOneHotEncoder"), (OrdinalEncoder, "SklearnOrdinalEncoder")):
        update_registered_converter(encoder, alias, _encoder_shape, _convert_encoder, overwrite=True,
                                    parser=_parse_encoder)


# Measured (issue 11) on real text columns (film titles, pet names, job titles, tweets, artwork titles):
# skl2onnx's TfidfVectorizer + TruncatedSVD graph differs from scikit-learn by 0.02-0.06 (char n-grams)
# and up to 0.2 (words) on the SVD outputs, for 0.1-88% of rows (whitespace runs, punctuation and
# non-ASCII case are tokenized differently), it has no char_wb analyzer, and its StringNormalizer needs
# the en_US.UTF-8 locale installed on the serving machine. A tree model on those outputs cannot keep
# parity, so the exporter says why and serves model.skops.
TEXT_ONNX_REASON = ("free-text columns (TextEncoder) have no exact ONNX conversion: skl2onnx's TF-IDF graph "
                    "tokenizes whitespace, punctuation and non-ASCII case differently from scikit-learn (SVD "
                    "outputs off by up to 0.06 on real titles and tweets) and has no char_wb n-grams; "
                    "model.skops serves it")


def _refuse_text_shape(operator) -> None:
    raise NotImplementedError(TEXT_ONNX_REASON)


def _refuse_text(scope, operator, container) -> None:
    raise NotImplementedError(TEXT_ONNX_REASON)


def _imputer_shape(operator) -> None:
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

    imputer = operator.raw_operator
    input_type = type(operator.inputs[0].type)
    n_features = len(imputer.statistics_)
    n_indicators = len(imputer.indicator_.features_) if imputer.add_indicator else 0
    output_type = input_type if input_type in (StringTensorType, DoubleTensorType, FloatTensorType) \
        else DoubleTensorType
    operator.outputs[0].type = output_type([operator.inputs[0].get_first_dimension(),
                                            n_features + n_indicators])


def _concat_inputs(scope, operator, container) -> str:
    # skl2onnx's concatenate_variables uses FeatureVectorizer, which takes no strings and outputs
    # float32; Concat keeps the inputs' own type (double stays double).
    names = [variable.full_name for variable in operator.inputs]
    if len(names) == 1:
        return names[0]
    joined = scope.get_unique_variable_name("joined")
    container.add_node("Concat", names, [joined], axis=1)
    return joined


def _convert_imputer(scope, operator, container) -> None:
    # skl2onnx's own SimpleImputer converter ignores add_indicator (the output then silently lacks
    # the indicator columns), rounds numeric fill values to float32 and refuses NaN as the missing
    # marker of string columns. This one keeps doubles, appends the indicators and treats "" as
    # missing in string inputs (OnnxPredictor feeds NaN as "").
    from onnx import TensorProto
    from skl2onnx.common.data_types import StringTensorType

    imputer = operator.raw_operator
    is_string = isinstance(operator.inputs[0].type, StringTensorType)
    stats = imputer.statistics_
    if not is_string and np.isnan(np.asarray(stats, dtype=float)).any():
        raise NotImplementedError("SimpleImputer with an all-missing numeric column is not convertible")
    if is_string and imputer.add_indicator:
        raise NotImplementedError("SimpleImputer(add_indicator=True) on string columns is not convertible")
    features = _concat_inputs(scope, operator, container)
    missing = scope.get_unique_variable_name("missing")
    fill = scope.get_unique_variable_name("fill")
    out_name = operator.outputs[0].full_name
    if is_string:
        marker = imputer.missing_values if isinstance(imputer.missing_values, str) else ""
        # Equal compares strings only from opset 19, above the opset 18 every graph here targets (skl2onnx
        # refused the whole pipeline: "Opset number 19 is higher than targeted opsets"); a LabelEncoder
        # (ai.onnx.ml 2, as the encoders below use) marks the marker 1 and every other string 0
        flag = scope.get_unique_variable_name("missing_flag")
        container.add_node("LabelEncoder", [features], [flag], op_domain="ai.onnx.ml", op_version=2,
                           keys_strings=[marker], values_int64s=[1], default_int64=0)
        container.add_node("Cast", [flag], [missing], to=TensorProto.BOOL)
        container.add_initializer(fill, TensorProto.STRING, [1, len(stats)],
                                  [str(v).encode() for v in stats])
    else:
        proto = (TensorProto.DOUBLE if operator.inputs[0].type.__class__.__name__ == "DoubleTensorType"
                 else TensorProto.FLOAT)
        if isinstance(imputer.missing_values, float) and np.isnan(imputer.missing_values):
            container.add_node("IsNaN", [features], [missing])
        else:
            marker_name = scope.get_unique_variable_name("marker")
            container.add_initializer(marker_name, proto, [1], [float(imputer.missing_values)])
            container.add_node("Equal", [features, marker_name], [missing])
        container.add_initializer(fill, proto, [1, len(stats)], np.asarray(stats, dtype=float).tolist())
    if not imputer.add_indicator or not len(imputer.indicator_.features_):
        container.add_node("Where", [missing, fill, features], [out_name])
        return
    imputed = scope.get_unique_variable_name("imputed")
    container.add_node("Where", [missing, fill, features], [imputed])
    columns = scope.get_unique_variable_name("indicator_columns")
    container.add_initializer(columns, TensorProto.INT64, [len(imputer.indicator_.features_)],
                              [int(i) for i in imputer.indicator_.features_])
    picked = scope.get_unique_variable_name("indicator_bool")
    container.add_node("Gather", [missing, columns], [picked], axis=1)
    indicator = scope.get_unique_variable_name("indicator")
    container.add_node("Cast", [picked], [indicator], to=proto)
    container.add_node("Concat", [imputed, indicator], [out_name], axis=1)


def _encoder_tables(encoder) -> list[np.ndarray]:
    """Per input column, the encoder's output block for each known category, then for an unseen one.

    Built by asking the fitted encoder itself (``transform`` on probe rows), so infrequent-category
    grouping, ``drop``, ``unknown_value`` and ``max_categories`` come out exactly as scikit-learn does
    them; skl2onnx's converters ignore infrequent categories (its graphs fail or differ).
    """
    categories = encoder.categories_
    widths = getattr(encoder, "_n_features_outs", None) or [1] * len(categories)
    unseen = "\x00mlh-unseen-category"
    tables, start = [], 0
    for i, (known, width) in enumerate(zip(categories, widths)):
        probe = pd.DataFrame({j: [c[0]] * (len(known) + 1) for j, c in enumerate(categories)}, dtype=object)
        probe[i] = list(known) + [unseen]
        probe.columns = list(getattr(encoder, "feature_names_in_", range(len(categories))))
        try:
            out = encoder.transform(probe)
        except ValueError:  # handle_unknown="error": unseen categories never reach a served model
            out = np.vstack([encoder.transform(probe.iloc[:-1]), np.zeros((1, sum(widths)))])
        out = out.toarray() if hasattr(out, "toarray") else np.asarray(out, dtype=float)
        tables.append(out[:, start:start + width].astype(float))
        start += width
    return tables


def _is_plain_one_hot(encoder) -> bool:
    """A OneHotEncoder whose blocks are one column per category, all zeros for an unseen one: no dropped column,
    no infrequent grouping (its lookup table would be the identity above a row of zeros)."""
    from sklearn.preprocessing import OneHotEncoder

    return (isinstance(encoder, OneHotEncoder) and getattr(encoder, "drop_idx_", None) is None
            and not getattr(encoder, "_infrequent_enabled", False)
            and getattr(encoder, "_n_features_outs", None) == [len(known) for known in encoder.categories_])


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA


def _parse_encoder(scope, model, inputs, custom_parsers=None):
    # Declare the double output at parse time: skl2onnx types a ColumnTransformer's output (and so
    # the classifier's probabilities) from its first branch's declared type, before shapes are known.
    from skl2onnx._supported_operators import _get_sklearn_operator_name
    from skl2onnx.common.data_types import DoubleTensorType

    operator = scope.declare_local_operator(_get_sklearn_operator_name(type(model)), model)
    operator.inputs = inputs
    operator.outputs.append(scope.declare_local_variable("encoded", DoubleTensorType()))
    return operator.outputs


def _encoder_shape(operator) -> None:
    from skl2onnx.common.data_types import DoubleTensorType

    widths = getattr(operator.raw_operator, "_n_features_outs", None) or [1] * len(
        operator.raw_operator.categories_)
    operator.outputs[0].type = DoubleTensorType([operator.inputs[0].get_first_dimension(), sum(widths)])


def _convert_encoder(scope, operator, container) -> None:
    # One lookup table per column: LabelEncoder maps the category to a row, Gather picks the block.
    from onnx import TensorProto
    from skl2onnx.common.data_types import StringTensorType

    encoder = operator.raw_operator
    features = _concat_inputs(scope, operator, container)
    is_string = isinstance(operator.inputs[0].type, StringTensorType)
    plain = _is_plain_one_hot(encoder)
    tables = [None] * len(encoder.categories_) if plain else _encoder_tables(encoder)
    blocks = []
    for i, (known, table) in enumerate(zip(encoder.categories_, tables)):
        column_index = scope.get_unique_variable_name("column_index")
        container.add_initializer(column_index, TensorProto.INT64, [1], [i])
        column = scope.get_unique_variable_name("column")
        container.add_node("ArrayFeatureExtractor", [features, column_index], [column], op_domain="ai.onnx.ml")
        row = scope.get_unique_variable_name("row")
        # missing values are a category of their own; OnnxPredictor feeds them as ""
        keys = ({"keys_strings": ["" if _is_missing(k) else str(k) for k in known]} if is_string
                else {"keys_floats": [float(k) for k in known]})
        container.add_node("LabelEncoder", [column], [row], op_domain="ai.onnx.ml", op_version=2,
                           values_int64s=list(range(len(known))), default_int64=len(known), **keys)
        flat = scope.get_unique_variable_name("flat_row")
        shape = scope.get_unique_variable_name("shape")
        container.add_initializer(shape, TensorProto.INT64, [1], [-1])
        container.add_node("Reshape", [row, shape], [flat])
        if plain:
            # a one-hot block: OneHot writes row k's 1.0 (an unseen category's index len(known) is out of range:
            # all zeros, as handle_unknown="ignore" encodes it) instead of a (categories + 1) x categories lookup
            # table, which for pizzaplace's 16,382 order times held 268M doubles (2 GB) in the graph
            # (onnxruntime's OneHot writes float32, not double: 0 and 1 are exact in both)
            depth, values, block32 = (scope.get_unique_variable_name(name) for name in ("depth", "off_on", "block32"))
            container.add_initializer(depth, TensorProto.INT64, [], [len(known)])
            container.add_initializer(values, TensorProto.FLOAT, [2], [0.0, 1.0])
            container.add_node("OneHot", [flat, depth, values], [block32], axis=-1)
            blocks.append(scope.get_unique_variable_name("block"))
            container.add_node("Cast", [block32], [blocks[-1]], to=TensorProto.DOUBLE)
            continue
        lookup = scope.get_unique_variable_name("lookup")
        container.add_initializer(lookup, TensorProto.DOUBLE, list(table.shape), table.ravel().tolist())
        block = scope.get_unique_variable_name("block")
        container.add_node("Gather", [lookup, flat], [block], axis=0)
        blocks.append(block)
    if len(blocks) == 1:
        container.add_node("Identity", blocks, [operator.outputs[0].full_name])
    else:
        container.add_node("Concat", blocks, [operator.outputs[0].full_name], axis=1)
