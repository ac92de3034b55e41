"""Logging: one request id per request (and per Celery task it caused), personal data masked.

`build_logging()` returns the `LOGGING` dict for the settings modules: plain lines locally,
JSON in production. Every record gets `request_id` from a context variable that
`config.middleware.request_id_middleware` sets for a request and `config.celery_app`
restores for a task, so the intake of a postback and the worker that processes it log
under the same id.

This module must not import Django settings: the settings modules import it.
"""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# E.164 numbers, with or without the "+", as long as they stand alone (not inside a longer
# run of digits such as a timestamp or an id), and e-mail addresses.
_PHONE = re.compile(r"(?<![\w+])\+[1-9]\d{6,14}(?!\d)")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
PHONE_MASK = "[phone]"
EMAIL_MASK = "[email]"

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "request_id"}
)


def mask_personal_data(text: str) -> str:
    """Replace phone numbers (E.164) and e-mail addresses in free text."""
    if "@" in text:
        text = _EMAIL.sub(EMAIL_MASK, text)
    if "+" in text:
        text = _PHONE.sub(PHONE_MASK, text)
    return text


class RequestIdFilter(logging.Filter):
    """Adds `record.request_id` ("-" outside a request or task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        return True


class PersonalDataFilter(logging.Filter):
    """A safety net: no phone number or e-mail address leaves the process in a log line.

    Code should not log them in the first place; this catches the ones that slip
    through, including inside exception text (an IntegrityError quotes the row).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_personal_data(message)
        if masked != message or record.args:
            record.msg = masked
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_personal_data(record.exc_text)
            # Formatters prefer exc_info over exc_text; keep only the masked text.
            record.exc_info = None
        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD_ATTRIBUTES and isinstance(value, str):
                setattr(record, name, mask_personal_data(value))
        return True


PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
JSON_FORMAT = "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s"


def build_logging(*, log_format: str = "plain", level: str = "INFO") -> dict[str, Any]:
    """The `LOGGING` setting. `log_format` is "plain" or "json"."""
    if log_format not in {"plain", "json"}:
        raise ValueError(f"LOG_FORMAT must be 'plain' or 'json', not {log_format!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "config.logging.RequestIdFilter"},
            "personal_data": {"()": "config.logging.PersonalDataFilter"},
        },
        "formatters": {
            "plain": {"format": PLAIN_FORMAT},
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": JSON_FORMAT,
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            },
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["request_id", "personal_data"],
            },
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Celery adds its own handlers unless told otherwise; ours are enough.
            "celery": {"level": level, "propagate": True},
        },
    }
