"""The API's logs: text for a person at a terminal, or JSON, one object a line, to ship.

`IRISOPS_LOG_FORMAT=json` turns every line the process writes into JSON: uvicorn's
start-up and error lines, our own (model swaps, reload failures, unexpected errors
with their traceback in one `exception` field) and the access log. Anything logged
while a request is being answered carries that request's id, so the traceback of a
500 can be found from the id the client got back in `X-Request-ID`.

The access log records no header and no query string: the API key (in
`Authorization` or `X-API-Key`) can never reach a log line.
"""

import copy
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from uvicorn.config import LOGGING_CONFIG

LogFormat = Literal["text", "json"]

# Set by the request middleware for the duration of each request (each request runs
# in its own task, so its context never leaks into another's).
request_id: ContextVar[str | None] = ContextVar("irisops_request_id", default=None)
access_log = logging.getLogger("irisops.access")

# What every LogRecord has; anything else on a record came from `extra=` and is a field.
# (uvicorn passes `color_message`, the same text with terminal colours, as an extra.)
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, then the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES:
                entry[key] = value
        if "request_id" not in entry and (current := request_id.get()) is not None:
            entry["request_id"] = current
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


def logging_config(log_format: LogFormat) -> dict[str, Any]:
    """The `logging.config.dictConfig` uvicorn applies at start-up.

    Text: uvicorn's own format, with our loggers beside its. JSON: the same loggers,
    every one through `JsonFormatter` on stderr.
    """
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["irisops"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    if log_format == "json":
        config["formatters"] = {"json": {"()": JsonFormatter}}
        for handler in config["handlers"].values():
            handler["formatter"] = "json"
    return config


ACCESS_FORMAT = '%s - "%s %s HTTP/%s" %d %.2f ms model=%s id=%s'


def log_access(
    *,
    client: str,
    method: str,
    path: str,
    http_version: str,
    route: str,
    status: int,
    seconds: float,
    model_version: str | None,
    request: str,
) -> None:
    """One line per answered request, like uvicorn's, plus its latency, model and id.

    The record is built here and handed to the logger's handlers directly: `log.info`
    would also walk the stack for the caller's file and line (useless here) and check
    every `extra` key, which together doubled the cost of each line.
    """
    if not access_log.isEnabledFor(logging.INFO):
        return
    duration_ms = round(seconds * 1000, 3)
    args = (client, method, path, http_version, status, duration_ms, model_version, request)
    record = logging.LogRecord(access_log.name, logging.INFO, "", 0, ACCESS_FORMAT, args, None)
    record.__dict__.update(
        request_id=request,
        method=method,
        path=path,
        route=route,
        status=status,
        duration_ms=duration_ms,
        model_version=model_version,
        client=client,
    )
    access_log.handle(record)
