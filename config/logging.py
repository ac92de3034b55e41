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
from contextvars import ContextVar
from typing import Any

from config.masking import personal_data_masked

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "request_id"}
)


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
        masked = personal_data_masked(message)
        if masked != message or record.args:
            record.msg = masked
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = personal_data_masked(record.exc_text)
            # Formatters prefer exc_info over exc_text; keep only the masked text.
            record.exc_info = None
        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD_ATTRIBUTES and isinstance(value, str):
                setattr(record, name, personal_data_masked(value))
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
