"""Dataclasses <-> JSON-able values, driven by the type hints of the model.

One walker serves three purposes: writing reports, reading them back
(``chanscan report``, ``chanscan diff``) and deriving the JSON Schema, so the
three cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from enum import Enum
from functools import cache
from typing import Any, TypeVar, Union

from chanscan.errors import ReportFormatError

T = TypeVar("T")

_SCALARS: tuple[type, ...] = (str, int, float, bool)


def to_jsonable(value: Any) -> Any:
    """Dataclasses become dicts (in field order), enums their values, tuples lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value


@cache
def field_types(cls: type) -> dict[str, Any]:
    """Resolved type hints of a dataclass (cached; the model is static)."""
    return typing.get_type_hints(cls)


def from_jsonable(cls: type[T], data: Any, where: str = "$") -> T:
    """Rebuild ``cls`` from JSON-able ``data``; unknown keys are ignored so that a newer
    minor version of the format stays readable, missing keys take field defaults."""
    return typing.cast(T, _decode(cls, data, where))


def _decode(tp: Any, data: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if data is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _decode(arg, data, where)
            except ReportFormatError as exc:
                errors.append(str(exc))
        raise ReportFormatError(errors[0] if errors else f"{where}: unexpected null")
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(data, list):
            raise ReportFormatError(f"{where}: expected a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v, f"{where}[{i}]") for i, v in enumerate(data))
        return tuple(
            _decode(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, data, strict=False))
        )
    if origin is dict:
        _, vt = typing.get_args(tp)
        if not isinstance(data, dict):
            raise ReportFormatError(f"{where}: expected an object")
        return {k: _decode(vt, v, f"{where}.{k}") for k, v in data.items()}
    if tp is Any:
        return data
    if isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(data)
        except ValueError:
            raise ReportFormatError(f"{where}: {data!r} is not a valid {tp.__name__}") from None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise ReportFormatError(f"{where}: expected an object for {tp.__name__}")
        hints = field_types(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name in data:
                kwargs[f.name] = _decode(hints[f.name], data[f.name], f"{where}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ReportFormatError(f"{where}: missing field {f.name!r}")
        return tp(**kwargs)
    if tp is float:
        if isinstance(data, int | float) and not isinstance(data, bool):
            return float(data)
        raise ReportFormatError(f"{where}: expected a number")
    if tp in _SCALARS:
        if type(data) is tp:
            return data
        raise ReportFormatError(f"{where}: expected {tp.__name__}, got {type(data).__name__}")
    raise ReportFormatError(f"{where}: cannot decode type {tp!r}")
