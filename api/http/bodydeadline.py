"""A deadline and a minimum rate for every request body (issue 12, slow clients).

`BodyDeadline` is a pure ASGI middleware: while a request's body is still arriving, each wait for
the next piece is bounded so that the whole body arrives within `upload_deadline_s` and, after
`upload_rate_grace_s`, at `upload_min_rate_bps` or more on average. A client that stalls or
trickles gets `408` (connection closed) and the application sees a disconnect, so nothing waits on
it any longer. Once the body is complete the middleware steps aside (a response may still listen
for the client going away). The upload route applies the same limits itself, with a problem
document that says how much arrived (api.http.routes.submissions.BodyClock).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from api.http.problems import problem_body
from api.core.settings import Settings

EXEMPT_PATHS = ("/api/v1/submissions",)  # POST uploads: BodyClock, with the abort of stored parts


def body_wait(settings: Settings, received: int, elapsed: float) -> float:
    """Seconds the next piece of a body may take, given what arrived so far (<= 0: too slow)."""
    limit = settings.upload_deadline_s
    if settings.upload_min_rate_bps > 0:
        limit = min(limit, settings.upload_rate_grace_s + received / settings.upload_min_rate_bps)
    return limit - elapsed


class BodyDeadline:
    def __init__(self, app: Any, settings: Settings):
        self.app, self.settings = app, settings

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or (scope["method"] == "POST" and scope["path"] in EXEMPT_PATHS):
            await self.app(scope, receive, send)
            return
        start = time.monotonic()
        state = {"received": 0, "body_done": False, "timed_out": False, "started": False}

        async def guarded_send(message: Any) -> None:
            if state["timed_out"]:
                return  # the 408 went out instead
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        async def guarded_receive() -> Any:
            if state["timed_out"]:
                return {"type": "http.disconnect"}
            if state["body_done"]:
                return await receive()
            wait = body_wait(self.settings, int(state["received"]), time.monotonic() - start)
            try:
                message = await asyncio.wait_for(receive(), timeout=max(wait, 0.0))
            except asyncio.TimeoutError:
                state["timed_out"] = True
                if not state["started"]:
                    await _send_408(send, scope["path"], int(state["received"]))
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                state["received"] = int(state["received"]) + len(message.get("body", b""))
                state["body_done"] = not message.get("more_body", False)
            return message

        await self.app(scope, guarded_receive, guarded_send)


async def _send_408(send: Any, path: str, received: int) -> None:
    body = problem_body("request-timeout", f"the request body arrived too slowly ({received} bytes); send it "
                        "faster or in one piece", 408, path)
    payload = json.dumps(body, separators=(",", ":")).encode()
    await send({"type": "http.response.start", "status": 408,
                "headers": [(b"content-type", b"application/problem+json"), (b"connection", b"close"),
                            (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})

