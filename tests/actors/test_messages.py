"""Message conventions: JSON round trips for every type, clear decode errors."""

from __future__ import annotations

import contextlib
import enum
import types
import typing
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import actors
import reactor  # noqa: F401 - registers the run journal's events, whatever the test order
import tests.support.actors
from actors import Failure, FailureKind, Message, decode, encode
from actors.lowlevel import MessageDecodeError, message_types

_INT64 = 2**63 - 1


def strategy_for(tp: Any) -> st.SearchStrategy[Any]:  # noqa: PLR0911 - one case per type
    """A hypothesis strategy for a msgspec field type (the subset messages use)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return st.one_of([strategy_for(a) for a in args])
    if origin is list:
        return st.lists(strategy_for(args[0]), max_size=4)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return st.lists(strategy_for(args[0]), max_size=4).map(tuple)
    if origin is tuple:
        return st.tuples(*(strategy_for(a) for a in args))
    if origin is dict:
        return st.dictionaries(strategy_for(args[0]), strategy_for(args[1]), max_size=4)
    if origin is typing.Literal:
        return st.sampled_from(args)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        type(None): st.none(),
        bool: st.booleans(),
        int: st.integers(-_INT64, _INT64),
        float: st.floats(allow_nan=False, allow_infinity=False),
        str: st.text(max_size=20),
        bytes: st.binary(max_size=20),
        msgspec.Raw: st.sampled_from([b"null", b"1", b'"x"', b'{"a":[1,2.5]}']).map(msgspec.Raw),
        Any: st.none() | st.integers(-100, 100) | st.text(max_size=5),
        object: st.none() | st.integers(-100, 100) | st.text(max_size=5),
    }
    if tp in simple:
        return simple[tp]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from(list(tp))
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return struct_strategy(tp)
    msg = f"no strategy for field type {tp!r}"
    raise TypeError(msg)


def struct_strategy(cls: type[msgspec.Struct]) -> st.SearchStrategy[Any]:
    """Instances of ``cls`` with every field drawn from its type."""
    fields = {f.name: strategy_for(f.type) for f in msgspec.structs.fields(cls)}
    return st.fixed_dictionaries(fields).map(lambda kw: cls(**kw))


ALL_TYPES = message_types()


def test_the_registry_holds_the_runtime_protocol() -> None:
    """The runtime's own messages are registered (and the generic bases are not)."""
    names = {t.__name__ for t in ALL_TYPES}
    assert {"Failure", "ActorCrashed", "ActorRestarted", "SupervisorGaveUp", "Ping"} <= names
    assert "Request" not in names
    assert "Event" not in names


@pytest.mark.parametrize("cls", ALL_TYPES, ids=lambda c: c.__name__)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_every_message_type_round_trips_through_json(cls: type[Any], data: st.DataObject) -> None:
    """Encode then decode gives back an equal message, with or without the type."""
    message = data.draw(struct_strategy(cls))
    raw = encode(message)
    assert decode(raw) == message
    assert decode(raw, cls) == message


def test_decode_errors_name_the_field_path() -> None:
    """A wrong field type is an error naming its JSON path."""
    with pytest.raises(MessageDecodeError, match=r"\$\.n"):
        decode(b'{"type":"Ping","n":"forty-two"}')
    with pytest.raises(MessageDecodeError, match="not valid JSON"):
        decode(b'{"type":')
    with pytest.raises(MessageDecodeError, match="Nope"):
        decode(b'{"type":"Nope"}')


def test_a_second_class_with_the_same_tag_is_refused() -> None:
    """Two message classes with one tag would be ambiguous on the wire."""
    with pytest.raises(TypeError, match="'Ping'.*already used.*tests.support.actors.Ping"):

        class Ping(Message, frozen=True, kw_only=True):
            pass


def test_failures_are_typed_values_with_retryability() -> None:
    """Failure carries a kind from the taxonomy; retryable follows the kind."""
    limited = Failure(kind=FailureKind.RATE_LIMITED, message="slow down", retry_after=1.5)
    assert limited.retryable
    assert not Failure(kind=FailureKind.AUTH, message="bad key").retryable
    assert decode(encode(limited)) == limited
    assert str(limited) == "rate_limited: slow down"


def test_messages_carry_trace_and_deadline_by_default() -> None:
    """Every message has trace and deadline fields, omitted from JSON when unset."""
    ping = tests.support.actors.Ping(n=1)
    assert ping.trace is None
    assert ping.deadline is None
    assert encode(ping) == b'{"type":"Ping","n":1}'
    assert isinstance(actors.decode(b'{"type":"Ping","deadline":5.0}'), tests.support.actors.Ping)


class FuzzEnvelope(Message, frozen=True, kw_only=True):
    """A message with a free-form field: where deep nesting reaches msgspec's recursion."""

    payload: Any = None


def _nested(depth: int, opener: str, closer: str, leaf: str = "1") -> str:
    return opener * depth + leaf + closer * depth


def test_deeply_nested_json_is_a_decode_error_not_a_recursion_error() -> None:
    """A payload nested far deeper than the stack allows gives MessageDecodeError."""
    for depth in (1_000, 5_000, 100_000):
        for opener, closer in (("[", "]"), ('{"a":', "}")):
            body = '{"type":"FuzzEnvelope","payload":' + _nested(depth, opener, closer) + "}"
            with pytest.raises(MessageDecodeError):
                decode(body)
            with pytest.raises(MessageDecodeError):
                decode(body, FuzzEnvelope)


_FRAGMENTS = [
    '{"type":"FuzzEnvelope","payload":',
    "[",
    "{",
    '"a":',
    "]",
    "}",
    ",",
    "1",
    '"x"',
    "null",
    "true",
    "\\u0000",
    '"\\ud800"',
    "1e999",
    "-",
    ":",
    '"type":"Failure"',
    " ",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=60), st.integers(0, 3_000))
def test_malformed_payloads_only_ever_raise_message_decode_error(
    parts: list[str], depth: int
) -> None:
    """Random fragments, optionally wrapped in deep nesting: decoded, or MessageDecodeError."""
    body = "".join(parts)
    if depth:
        body = '{"type":"FuzzEnvelope","payload":' + _nested(depth, "[", "]", body or "0") + "}"
    for data in (body, body.encode("utf-8", "surrogatepass"), body.encode()[: len(body) // 2]):
        with contextlib.suppress(MessageDecodeError):
            decode(data)
