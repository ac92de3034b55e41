"""The one way personal data is masked, in admin pages and in log lines alike.

`+12015550123` -> `+1201•••0123`, `jane.doe@example.com` -> `j•••@example.com`: enough
to tell two contacts apart, not to call or mail one. Who may see the full values is the
tracking app's business (`tracking.masking`).

This module must not import Django settings: `config.logging` uses it while settings load.
"""

from __future__ import annotations

import re

MASK = "•••"

# E.164 numbers, as long as they stand alone (not inside a longer run of digits such as a
# timestamp or an id), and e-mail addresses.
_PHONE = re.compile(r"(?<![\w+])\+[1-9]\d{6,14}(?!\d)")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def phone_masked(value: str | None) -> str:
    if not value:
        return ""
    if len(value) <= 9:
        return value[:2] + MASK + value[-2:]
    return value[:5] + MASK + value[-4:]


def email_masked(value: str | None) -> str:
    if not value:
        return ""
    local, _, domain = value.partition("@")
    return f"{local[:1]}{MASK}@{domain}"


def personal_data_masked(text: str) -> str:
    """`text` with every phone number (E.164) and e-mail address in it masked."""
    if "@" in text:
        text = _EMAIL.sub(lambda found: email_masked(found.group()), text)
    if "+" in text:
        text = _PHONE.sub(lambda found: phone_masked(found.group()), text)
    return text
