"""Params files: the YAML a user writes (strict: no duplicate or non-string keys, no aliases), ``--set`` overrides,
and both read and validated into ``Params`` (``mlhelpers.core.params``)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from mlhelpers.core.params import Params, ParamsError, short_repr, validate_params

__all__ = ["read_params_file", "parse_overrides", "load_params"]

MAX_PARAMS_BYTES = 1_000_000  # a params file is a few lines; anything this big is not one


def read_params_file(path: str | Path) -> dict[str, Any]:
    """Parse a params YAML file into a dict; malformed, ambiguous or empty files raise ``ParamsError``.

    Stricter than YAML itself: a key given twice, a key that is not a string (``1:``, ``yes:``) and aliases
    (``*name``, the stuff of "billion laughs" files) are refused, each with one short message.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params file {path} does not exist; pass a YAML file such as params/demo.yaml.")
    size = path.stat().st_size
    if size > MAX_PARAMS_BYTES:
        raise ParamsError(f"{path}: {size:,} bytes is not a params file (a few key: value lines); check the path.")
    try:
        values = yaml.load(path.read_text(encoding="utf-8"), Loader=_strict_loader()[0])  # noqa: S506 - a SafeLoader
    except (yaml.YAMLError, RecursionError, UnicodeDecodeError) as exc:
        raise ParamsError(f"{path}: {_yaml_problem(exc)}") from None
    if values is None:
        raise ParamsError(f"{path}: the file is empty; it needs at least 'data_path' and 'target' (see params/demo.yaml).")
    if not isinstance(values, dict):
        raise ParamsError(f"{path}: expected a mapping of key: value lines, got a {type(values).__name__}.")
    return values


def _yaml_problem(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "values nested too deeply; a params file holds flat key: value lines."
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (byte {exc.start}); save the file as UTF-8."
    where = getattr(exc, "problem_mark", None)
    line = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
    if isinstance(exc, _strict_loader()[1]):
        return f"{exc.problem}{line}; {exc.fix}."
    problem = str(getattr(exc, "problem", None) or exc)[:200]
    return f"malformed YAML{line}: {problem}; fix the syntax (key: value, one per line)."


@functools.cache
def _strict_loader():
    import yaml

    class AmbiguousYaml(yaml.YAMLError):
        def __init__(self, problem: str, fix: str, mark) -> None:
            super().__init__(problem)
            self.problem, self.fix, self.problem_mark = problem, fix, mark

    class StrictLoader(yaml.SafeLoader):
        """PyYAML's safe loader, refusing what makes a params file ambiguous or explosive."""

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise AmbiguousYaml(f"alias *{event.anchor} is not allowed in a params file",
                                    "write the value out where it is used", event.start_mark)
            return super().compose_node(parent, index)

        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, str):
                    raise AmbiguousYaml(f"key {short_repr(key)} is not a string", "keys are parameter names; "
                                        "quote it if it is one", key_node.start_mark)
                if key in seen:
                    raise AmbiguousYaml(f"key {key!r} is given twice", "keep one of them (YAML would silently "
                                        "take the last)", key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return StrictLoader, AmbiguousYaml


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn ``["cv_folds=3", "models=[dummy,linear]"]`` into typed values (YAML scalars)."""
    import yaml

    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ParamsError(f"--set {pair!r}: expected key=value, e.g. --set cv_folds=3.")
        try:
            values[key.strip()] = yaml.load(raw, Loader=_strict_loader()[0]) if raw.strip() else ""  # noqa: S506
        except (yaml.YAMLError, RecursionError):
            values[key.strip()] = raw
    return values


def load_params(path: str | Path, overrides: list[str] | None = None, check_data: bool = True) -> Params:
    """Read, override and validate a params file."""
    values = read_params_file(path) | parse_overrides(overrides or [])
    return validate_params(values, source=str(path), check_data=check_data)
