"""The one exception the serving code raises to refuse a request, and its answer's shape."""

from collections.abc import Sequence

# The error type of a batch refused for its row count before its rows are validated.
TOO_MANY_ROWS = "too_many_rows"


class ApiError(Exception):
    """A refusal: the status, a sentence for a person, and each invalid field if any."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: Sequence[dict[str, str]] = (),
        *,
        authenticate: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.detail = detail
        self.errors = list(errors)
        # RFC 9110: a 401 names the scheme the client should use.
        challenge = {"WWW-Authenticate": "Bearer"} if authenticate else {}
        self.headers = {**challenge, **(headers or {})} or None
