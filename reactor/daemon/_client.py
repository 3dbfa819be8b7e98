"""A small HTTP client of a running daemon (what ``reactor ... --server URL`` uses).

The token comes from the argument, else ``$REACTOR_TOKEN``, else the token file the
daemon wrote (:func:`~reactor.daemon.default_token_file`). Errors come back as
:class:`DaemonClientError` carrying the daemon's stable ``code`` and ``field``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from reactor.daemon._daemon import read_token

__all__ = ["DaemonClient", "DaemonClientError", "SseEvent"]


class DaemonClientError(RuntimeError):
    """The daemon refused a request (or could not be reached: ``code`` ``connection``)."""

    def __init__(
        self, message: str, *, code: str, field: str | None = None, status: int = 0
    ) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        self.status = status


class SseEvent:
    """One server-sent event."""

    __slots__ = ("data", "event", "id")

    def __init__(self, event_id: str, event: str, data: str) -> None:
        self.id = event_id
        self.event = event
        self.data = data


class DaemonClient:
    """Calls a daemon's REST API.

    Args:
        url: The daemon's base URL (``http://127.0.0.1:8765``).
        token: The bearer token (default: ``$REACTOR_TOKEN``, else the token file).
        token_file: The token file to read instead of the default one.
        timeout: Seconds per request.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        token_file: Path | None = None,
        timeout: float = 300.0,
    ) -> None:
        self.url = url.rstrip("/")
        token = token or read_token(token_file)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> DaemonClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        """The decoded JSON answer.

        Raises:
            DaemonClientError: An error answer, or no answer at all.
        """
        query = {k: v for k, v in params.items() if v is not None}
        try:
            response = self._http.request(method, path, json=body, params=query)
        except httpx.HTTPError as exc:
            msg = f"cannot reach the daemon at {self.url}: {exc}"
            raise DaemonClientError(msg, code="connection") from None
        data = response.json() if response.content else None
        if response.is_error:
            error = (data or {}).get("error", {}) if isinstance(data, dict) else {}
            raise DaemonClientError(
                error.get("message") or f"HTTP {response.status_code}",
                code=error.get("code", "error"),
                field=error.get("field"),
                status=response.status_code,
            )
        return data

    def get(self, path: str, **params: Any) -> Any:
        """GET ``path``."""
        return self.request("GET", path, **params)

    def post(self, path: str, body: Any = None, **params: Any) -> Any:
        """POST ``body`` to ``path``."""
        return self.request("POST", path, body if body is not None else {}, **params)

    def events(self, path: str, *, last_event_id: str | None = None) -> Iterator[SseEvent]:
        """The server-sent events of ``path`` until the stream ends."""
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        with self._http.stream("GET", path, headers=headers, timeout=None) as response:
            if response.is_error:
                response.read()
                error = response.json().get("error", {})
                raise DaemonClientError(
                    error.get("message", "error"),
                    code=error.get("code", "error"),
                    status=response.status_code,
                )
            event_id = event = ""
            data: list[str] = []
            for line in response.iter_lines():
                if not line:
                    if data:
                        yield SseEvent(event_id, event or "message", "\n".join(data))
                    event, data = "", []
                    continue
                field, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if field == "id":
                    event_id = value
                elif field == "event":
                    event = value
                elif field == "data":
                    data.append(value)
