"""A streaming response that stops as soon as the client goes away.

Starlette's StreamingResponse on ASGI 2.4 servers only notices a disconnect at the
next write; an idle watch would then linger until its next event. This response
listens for `http.disconnect` while it streams and cancels the producer at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send


class DisconnectAwareStream(Response):
    def __init__(self, content: AsyncIterator[bytes], status_code: int = 200, media_type: str = "application/json",
                 headers: dict[str, str] | None = None) -> None:
        self.body_iterator = content
        self.status_code = status_code
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as tg:

            async def listen() -> None:
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        tg.cancel_scope.cancel()
                        return

            tg.start_soon(listen)
            try:
                await send({"type": "http.response.start", "status": self.status_code,
                            "headers": self.raw_headers})
                async for chunk in self.body_iterator:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except OSError:
                pass  # the client went away mid-write
            finally:
                aclose: Any = getattr(self.body_iterator, "aclose", None)
                if aclose is not None:
                    with anyio.CancelScope(shield=True):
                        await aclose()
            tg.cancel_scope.cancel()
