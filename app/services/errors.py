"""Refusals a person can act on. Each carries a message id (translated at the edge) and its facts."""

from __future__ import annotations

import json
from typing import Any


def N_(message: str) -> str:
    """Mark a message for extraction where it is defined; it is translated where it is shown."""
    return message


class Refused(Exception):
    """A use case refused the request; nothing was changed."""

    status = 409
    title = "Request refused"

    def __init__(self, message: str, **facts: Any) -> None:
        super().__init__(message)
        self.message = message  # an English msgid, translated with `facts` where it is shown
        self.facts = facts

    def stored(self) -> dict[str, Any]:
        """The refusal as JSON, to be stored with an idempotency key and raised again on a replay."""
        return {
            "type": type(self).__name__,
            "message": self.message,
            "field": getattr(self, "field", None),
            "facts": json.loads(json.dumps(self.facts, default=str)),
        }

    @classmethod
    def restore(cls, stored: dict[str, Any]) -> Refused:
        kinds = {kind.__name__: kind for kind in _all_subclasses(Refused)}
        refusal = Refused.__new__(kinds.get(stored["type"], Refused))
        Refused.__init__(refusal, stored["message"], **stored["facts"])
        if isinstance(refusal, Invalid):
            refusal.field = stored.get("field")
        return refusal


def _all_subclasses(cls: type[Refused]) -> list[type[Refused]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


class NotFound(Refused):
    status = 404
    title = "Not found"


class Invalid(Refused):
    status = 422
    title = "Invalid input"

    def __init__(self, message: str, field: str | None = None, **facts: Any) -> None:
        super().__init__(message, **facts)
        self.field = field


class LoginRefused(Refused):
    status = 401
    title = "Login refused"


class TooManyAttempts(Refused):
    status = 429
    title = "Too many attempts"
