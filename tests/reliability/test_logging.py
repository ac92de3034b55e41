import io
import json
import logging
import logging.config

import pytest

from config.logging import build_logging, request_id_var
from config.masking import personal_data_masked


def _capture(log_format: str) -> tuple[logging.Logger, io.StringIO]:
    """A logger wired exactly as settings wire the console, writing to a buffer."""
    config = build_logging(log_format=log_format, level="INFO")
    config["handlers"]["console"]["stream"] = io.StringIO()
    config["root"] = {"handlers": [], "level": "INFO"}
    config["loggers"] = {
        "creditflow.test": {"handlers": ["console"], "level": "INFO", "propagate": False}
    }
    config["disable_existing_loggers"] = False
    logging.config.dictConfig(config)
    logger = logging.getLogger("creditflow.test")
    stream = logger.handlers[0].stream  # type: ignore[attr-defined]
    return logger, stream


@pytest.fixture(autouse=True)
def _settings_logging_restored(settings):
    yield
    logging.config.dictConfig(settings.LOGGING)


@pytest.mark.django_db
def test_every_response_carries_a_request_id(client):
    # when
    first = client.get("/healthz")
    second = client.get("/healthz")

    # then
    assert first["X-Request-ID"]
    assert first["X-Request-ID"] != second["X-Request-ID"]


@pytest.mark.django_db
def test_a_safe_request_id_from_the_proxy_is_kept_and_an_unsafe_one_replaced(client):
    # when
    kept = client.get("/healthz", HTTP_X_REQUEST_ID="edge-7f3a.42")
    replaced = client.get("/healthz", HTTP_X_REQUEST_ID="<script>alert(1)</script>")
    too_long = client.get("/healthz", HTTP_X_REQUEST_ID="a" * 200)

    # then
    assert kept["X-Request-ID"] == "edge-7f3a.42"
    assert "<" not in replaced["X-Request-ID"]
    assert len(too_long["X-Request-ID"]) <= 64


def test_log_lines_carry_the_request_id():
    # given
    logger, stream = _capture("plain")
    token = request_id_var.set("req-123")

    # when
    try:
        logger.info("postback stored")
    finally:
        request_id_var.reset(token)
    logger.info("outside a request")

    # then
    first, second = stream.getvalue().splitlines()
    assert "[req-123] postback stored" in first
    assert "[-] outside a request" in second


def test_json_log_lines_are_json_with_the_request_id():
    # given
    logger, stream = _capture("json")
    token = request_id_var.set("req-456")

    # when
    try:
        logger.info("click drained", extra={"clicks": 12})
    finally:
        request_id_var.reset(token)

    # then
    record = json.loads(stream.getvalue())
    assert record["message"] == "click drained"
    assert record["request_id"] == "req-456"
    assert record["level"] == "INFO"
    assert record["clicks"] == 12


def test_phone_numbers_and_emails_never_reach_the_log():
    # given
    logger, stream = _capture("json")

    # when: careless code logs a contact, in the message, its arguments, extras and an error
    logger.warning("contact %s / %s", "+12015550123", "Jane.Doe@Example.com")
    logger.info("lookup", extra={"contact": "+447700900123"})
    try:
        raise ValueError("Key (phone)=(+12015550123) already exists; mail jane@example.com")
    except ValueError:
        logger.exception("insert failed")

    # then
    output = stream.getvalue()
    assert "+12015550123" not in output
    assert "+447700900123" not in output
    assert "Jane.Doe" not in output
    assert "jane@example.com" not in output
    lines = [json.loads(line) for line in output.splitlines()]
    assert lines[0]["message"] == "contact +1201•••0123 / J•••@Example.com"
    assert lines[1]["contact"] == "+4477•••0123"
    assert "+1201•••0123" in lines[2]["exc_info"]


def test_masking_leaves_ids_timestamps_and_amounts_alone():
    # when
    text = personal_data_masked("click 9f8e7d6c5b4a at 1732390000 payout +12.50 offer 12015550123")

    # then: no "+" E.164 run and no "@" here, nothing changes
    assert text == "click 9f8e7d6c5b4a at 1732390000 payout +12.50 offer 12015550123"
