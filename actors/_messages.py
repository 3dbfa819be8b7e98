"""The message conventions every protocol in the system follows.

Every message is a frozen, keyword-only, tagged msgspec ``Struct``. The base class
:class:`Message` carries two fields that travel with every request:

* ``trace``: a W3C trace-context carrier (``{"traceparent": ..., "tracestate": ...}``),
  stamped by the sender so that the receiver's span is a child of the sender's;
* ``deadline``: an absolute wall-clock time (seconds since the epoch) after which
  nobody waits for the answer any more.

Requests subclass :class:`Request` parametrised by their reply type, so that
``ref.ask(Ping())`` is typed as returning ``Pong``. A request that can't be answered is
answered with a :class:`Failure` whose ``kind`` comes from the one taxonomy
:class:`FailureKind`; failures are values and never raw exceptions crossing threads.

Every subclass registers itself by its tag, so one decoder can read any message back
from JSON (:func:`decode`), and a second class with the same tag is an error at the
point it is defined.
"""

from __future__ import annotations

import enum
import threading
from typing import Any, Generic, TypeVar, cast, overload

import msgspec

__all__ = [
    "Event",
    "Failure",
    "FailureKind",
    "Message",
    "MessageDecodeError",
    "Request",
    "decode",
    "encode",
    "message_types",
]

R = TypeVar("R")
T = TypeVar("T")


class FailureKind(enum.StrEnum):
    """Why a request was not answered with a result: the one failure taxonomy.

    The first group describes model servers and other remote peers; the second the
    actor runtime itself. ``retryable`` says whether trying the same thing again later
    can succeed.
    """

    RATE_LIMITED = "rate_limited"
    CONTEXT_WINDOW_EXCEEDED = "context_window_exceeded"
    CONTENT_POLICY = "content_policy"
    AUTH = "auth"
    NOT_FOUND = "not_found"
    TIMEOUT = "timeout"
    SERVER_ERROR = "server_error"
    OVERLOADED = "overloaded"
    CONNECTION = "connection"
    BAD_REQUEST = "bad_request"
    INVALID_RESPONSE = "invalid_response"
    INSUFFICIENT_MEMORY = "insufficient_memory"
    CIRCUIT_OPEN = "circuit_open"
    BUDGET_EXCEEDED = "budget_exceeded"
    PERMISSION_DENIED = "permission_denied"
    CANCELLED = "cancelled"
    ACTOR_CRASHED = "actor_crashed"
    ACTOR_STOPPED = "actor_stopped"
    INTERNAL = "internal"

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed if it is sent again later."""
        return self in _RETRYABLE


_RETRYABLE = frozenset(
    {
        FailureKind.RATE_LIMITED,
        FailureKind.TIMEOUT,
        FailureKind.SERVER_ERROR,
        FailureKind.OVERLOADED,
        FailureKind.CONNECTION,
        FailureKind.INVALID_RESPONSE,
        FailureKind.CIRCUIT_OPEN,
        FailureKind.ACTOR_CRASHED,
        FailureKind.ACTOR_STOPPED,
    }
)

_registry: dict[str, type[Any]] = {}
_registry_lock = threading.Lock()
_registry_version = 0


def _register(cls: type[Any]) -> None:
    global _registry_version  # noqa: PLW0603 - the registry is process-wide by nature
    tag = cls.__struct_config__.tag
    if not isinstance(tag, str):
        return
    with _registry_lock:
        existing = _registry.get(tag)
        if existing is not None and existing is not cls:
            msg = (
                f"message tag {tag!r} of {cls.__module__}.{cls.__qualname__} is already used "
                f"by {existing.__module__}.{existing.__qualname__}; pass tag='...' to tell "
                "them apart"
            )
            raise TypeError(msg)
        _registry[tag] = cls
        _registry_version += 1


class _Registering(msgspec.StructMeta):
    """Registers every new message class by its tag, once msgspec has settled it."""

    def __new__(
        mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any
    ) -> _Registering:
        cls = super().__new__(mcs, name, bases, namespace, **kwargs)
        _register(cls)
        return cls


class _Wire(
    msgspec.Struct,
    metaclass=_Registering,
    frozen=True,
    kw_only=True,
    tag=True,
    tag_field="type",
    omit_defaults=True,
    repr_omit_defaults=True,
):
    """The struct options every value on the wire shares: frozen, tagged, compact."""


class Message(_Wire, frozen=True, kw_only=True):
    """Base of every message: carries the trace context and the deadline.

    Attributes:
        trace: W3C trace-context carrier of the sender's span, or ``None``.
        deadline: Absolute time (``time.time()`` seconds) after which no one waits for
            a reply, or ``None`` for a one-way message.
    """

    trace: dict[str, str] | None = None
    deadline: float | None = None


class Request(Message, Generic[R], frozen=True, kw_only=True):
    """A message that expects a reply of type ``R`` (or a :class:`Failure`)."""


class Event(Message, frozen=True, kw_only=True):
    """A fact published on the event bus (a breaker opened, a run finished, ...)."""


class Failure(_Wire, frozen=True, kw_only=True):
    """A typed failure: the answer to a request that could not be served.

    Attributes:
        kind: What went wrong, from the one taxonomy.
        message: A sentence for people, naming what failed and where.
        source: Who reports it: an actor name, a host, a model.
        retry_after: Seconds to wait before retrying, when the peer said so.
        details: Extra context (status code, bytes received before a stream broke, ...).
    """

    kind: FailureKind
    message: str
    source: str | None = None
    retry_after: float | None = None
    details: dict[str, str] = msgspec.field(default_factory=dict)

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed if it is sent again later.

        The kind decides, unless the peer said otherwise: ``details["should_retry"]``
        (``"true"`` or ``"false"``, from an ``x-should-retry`` header) wins, as it does
        for the vendors' own SDKs.
        """
        said = self.details.get("should_retry")
        if said is not None:
            return said == "true"
        return self.kind.retryable

    def __str__(self) -> str:
        where = f" [{self.source}]" if self.source else ""
        return f"{self.kind.value}{where}: {self.message}"


# The base classes are not messages of their own.
for _base in ("_Wire", "Message", "Request", "Event"):
    _registry.pop(_base, None)


class MessageDecodeError(ValueError):
    """Bytes that are not a valid encoding of the expected message type.

    The text names the JSON path of the offending field (``at `$.deadline```).
    """


_encoder = msgspec.json.Encoder()
_decoders: dict[object, msgspec.json.Decoder[Any]] = {}
_any_decoder: tuple[int, msgspec.json.Decoder[Any]] | None = None


def encode(message: Message | Failure) -> bytes:
    """Encode a message or failure as JSON bytes."""
    return _encoder.encode(message)


@overload
def decode(data: bytes | str) -> Message | Failure: ...
@overload
def decode(data: bytes | str, type: type[T]) -> T: ...
def decode(data: bytes | str, type: Any = None) -> Any:
    """Decode JSON bytes into a message.

    Args:
        data: The JSON document.
        type: The expected type (a message class, or a union of them). When omitted,
            any registered message or failure is accepted, chosen by its tag.

    Raises:
        MessageDecodeError: The document is not valid JSON, has an unknown tag, a
            field of the wrong type (the text names the path), or is nested too deeply.
    """
    decoder = _any() if type is None else _decoder_for(type)
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise MessageDecodeError(str(exc)) from exc
    except msgspec.DecodeError as exc:
        raise MessageDecodeError(f"not valid JSON: {exc}") from exc
    except RecursionError:
        # msgspec recurses once per level of nesting in a field typed Any (or a
        # recursive type): a document nested about a thousand deep exhausts the stack.
        msg = "the document is nested too deeply to decode"
        raise MessageDecodeError(msg) from None


def _decoder_for(tp: object) -> msgspec.json.Decoder[Any]:
    decoder = _decoders.get(tp)
    if decoder is None:
        decoder = msgspec.json.Decoder(cast("Any", tp))
        _decoders[tp] = decoder
    return decoder


def _any() -> msgspec.json.Decoder[Any]:
    global _any_decoder  # noqa: PLW0603 - rebuilt only when new message types appear
    cached = _any_decoder
    if cached is not None and cached[0] == _registry_version:
        return cached[1]
    with _registry_lock:
        version = _registry_version
        concrete = tuple(_concrete_types())
    union: Any = concrete[0]
    for tp in concrete[1:]:
        union = union | tp
    decoder = msgspec.json.Decoder(union)
    _any_decoder = (version, decoder)
    return decoder


def _concrete_types() -> list[type[Any]]:
    # Generic bases (Request) are not decodable on their own; leave them out.
    return [cls for cls in _registry.values() if not getattr(cls, "__parameters__", ())]


def message_types() -> list[type[Message] | type[Failure]]:
    """Every message class defined so far, in definition order."""
    with _registry_lock:
        return list(_registry.values())
