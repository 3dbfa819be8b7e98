"""Step results to journal bytes and back.

msgspec encodes what it knows (Structs, dataclasses, attrs, dicts, lists, datetimes,
enums, ...); pydantic models go through ``model_dump``. Decoding uses the step's return
annotation, so a replayed result has the type the step declared (without one, JSON's
own types come back).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

__all__ = ["EncodeError", "decode_value", "encode_value"]


class EncodeError(TypeError):
    """A value cannot be stored in the journal."""


def _enc_hook(obj: Any) -> Any:
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=repr)
    msg = f"a {type(obj).__module__}.{type(obj).__qualname__} cannot be encoded as JSON"
    if isinstance(obj, Iterator):  # a generator, a map(), an open file: consumed once
        msg += "; it is an iterator, read once: return a list (list(...)) instead"
    raise NotImplementedError(msg)


_encoder = msgspec.json.Encoder(enc_hook=_enc_hook)


def encode_value(value: Any) -> msgspec.Raw:
    """``value`` as JSON, ready to journal; :class:`EncodeError` says why not."""
    try:
        return msgspec.Raw(_encoder.encode(value))
    except (TypeError, NotImplementedError, OverflowError, ValueError) as exc:
        raise EncodeError(str(exc)) from exc


def _is_pydantic(kind: Any) -> bool:
    return isinstance(kind, type) and callable(getattr(kind, "model_validate", None))


def decode_value(raw: bytes | msgspec.Raw, kind: Any = Any) -> Any:
    """Decode journaled JSON into ``kind`` (``Any``: plain JSON types)."""
    data = bytes(raw)
    if kind is Any or kind is None or kind is type(None):
        return msgspec.json.decode(data)
    if _is_pydantic(kind):
        return kind.model_validate(msgspec.json.decode(data))
    try:
        return msgspec.json.decode(data, type=kind, strict=False)
    except (TypeError, msgspec.ValidationError):
        # An annotation msgspec cannot decode to (a Protocol, a class of its own):
        # the plain JSON is the best replay there is.
        return msgspec.json.decode(data)
