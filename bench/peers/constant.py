"""The server ceiling: a bare ASGI app that answers every request with the same bytes.

No framework, no parsing, no model: what uvicorn (uvloop, httptools, no access log,
as `irisops serve` runs) costs by itself for an answer the size of /predict's.
"""

from typing import Any

ANSWER = (
    b'{"prediction":"setosa","class_id":0,'
    b'"probabilities":{"setosa":1.0,"versicolor":0.0,"virginica":0.0},"model_version":"1"}'
)
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})
