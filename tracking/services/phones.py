"""Phone numbers in E.164: what `phonenumbers` answers, at a fraction of its cost for the
common case of a number already written `+<digits>`.

`phonenumbers.parse` scans for every way a number can be written, and `is_valid_number`
looks up each of its patterns through a dictionary of compiled regexes per call (and, for
a country code shared by several regions, types the number twice). A bulk upload of ten
thousand phones spent a third of its CPU there. Here the same metadata is compiled once per
country code and the same decisions are taken in the same order; `phonenumbers` itself
still decides whenever a number is not plainly `+<digits>` or could carry a national prefix.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberDesc

PHONE_UNPARSABLE = "Enter a phone number in international format, e.g. +12015550123."
PHONE_INVALID = "This phone number does not exist."

_E164_SHAPE = re.compile(r"\+([1-9][0-9]{2,19})")
# `phonenumbers.parse`'s bounds on a national significant number.
_NATIONAL_LENGTH_MIN = 2
_NATIONAL_LENGTH_MAX = 17


@dataclass(frozen=True, slots=True)
class _Description:
    """A `PhoneNumberDesc`, compiled: `phonenumbers._is_number_matching_desc`."""

    lengths: frozenset[int]  # empty: any length
    pattern: re.Pattern[str]

    def matches(self, national: str) -> bool:
        if self.lengths and len(national) not in self.lengths:
            return False
        return self.pattern.fullmatch(national) is not None


def _description(desc: PhoneNumberDesc | None) -> _Description | None:
    if desc is None or not desc.national_number_pattern:
        return None  # matches nothing, as in `_match_national_number`
    return _Description(
        lengths=frozenset(desc.possible_length), pattern=re.compile(desc.national_number_pattern)
    )


def _any_of(descs: list[PhoneNumberDesc | None]) -> tuple[_Description, ...]:
    """Descriptions that match what any of `descs` matches, one per set of lengths: the
    patterns of a set joined as alternatives, so a number is tried once per set (one
    regex for all ten types of a US number, not ten). The metadata's patterns have no
    backreferences or inline flags, so `(?:a)|(?:b)` matches in full what `a` or `b` does.
    """
    patterns: dict[frozenset[int], list[str]] = {}
    for desc in descs:
        if desc is not None and desc.national_number_pattern:
            lengths = frozenset(desc.possible_length)
            patterns.setdefault(lengths, []).append(desc.national_number_pattern)
    return tuple(
        _Description(
            lengths=lengths, pattern=re.compile("|".join(f"(?:{each})" for each in alternatives))
        )
        for lengths, alternatives in patterns.items()
    )


@dataclass(frozen=True, slots=True)
class _Region:
    """What makes a national number valid in one region: `_number_type_helper` answering
    other than UNKNOWN, and `is_valid_number_for_region`'s own checks."""

    leading_digits: re.Pattern[str] | None
    general: _Description | None
    # Every number type `_number_type_helper` tries (mobile only where it is not fixed
    # line's pattern: it is tried only after fixed line then), joined by `_any_of`.
    types: tuple[_Description, ...]
    # `is_valid_number_for_region` refuses a region of another country code.
    country_code_agrees: bool

    def number_has_a_type(self, national: str) -> bool:
        if self.general is None or not self.general.matches(national):
            return False
        return any(description.matches(national) for description in self.types)


def _region(metadata: PhoneMetadata, *, country_code_agrees: bool) -> _Region:
    descriptions = [
        metadata.premium_rate,
        metadata.toll_free,
        metadata.shared_cost,
        metadata.voip,
        metadata.personal_number,
        metadata.pager,
        metadata.uan,
        metadata.voicemail,
        metadata.fixed_line,
    ]
    if not metadata.same_mobile_and_fixed_line_pattern:
        descriptions.append(metadata.mobile)
    return _Region(
        leading_digits=re.compile(metadata.leading_digits) if metadata.leading_digits else None,
        general=_description(metadata.general_desc),
        types=_any_of(descriptions),
        country_code_agrees=country_code_agrees,
    )


@dataclass(frozen=True, slots=True)
class _CountryCode:
    national_prefix_for_parsing: re.Pattern[str] | None
    # None where `region_code_for_number` returns its only region without looking.
    regions: tuple[_Region, ...]
    only_region: _Region | None

    def is_valid(self, national: str) -> bool:
        """`phonenumbers.is_valid_number` for this country code and national number."""
        if self.only_region is not None:
            region = self.only_region
            return region.country_code_agrees and region.number_has_a_type(national)
        # `_region_code_for_number_from_list`: the first region that claims the number,
        # by its leading digits or else by typing it (typed once here, not twice)
        for region in self.regions:
            if region.leading_digits is not None:
                if region.leading_digits.match(national):
                    return region.country_code_agrees and region.number_has_a_type(national)
            elif region.number_has_a_type(national):
                return region.country_code_agrees
        return False


@functools.cache
def _country_code(country_code: int) -> _CountryCode | None:
    """The compiled rules of a country code, or None when `phonenumbers` has none."""
    region_codes = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if not region_codes:
        return None
    main = PhoneMetadata.metadata_for_region_or_calling_code(
        country_code, phonenumbers.region_code_for_country_code(country_code)
    )
    if main is None:
        return None
    prefix = main.national_prefix_for_parsing
    regions = []
    for region_code in region_codes:
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(
            country_code, region_code.upper()
        )
        if metadata is None:
            continue
        agrees = region_code == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY or (
            metadata.country_code == country_code
        )
        regions.append(_region(metadata, country_code_agrees=agrees))
    return _CountryCode(
        national_prefix_for_parsing=re.compile(prefix) if prefix else None,
        regions=tuple(regions),
        # One region code: its metadata is `main`'s, so `regions` holds it.
        only_region=regions[0] if len(region_codes) == 1 else None,
    )


def _e164_shape(phone: str) -> tuple[_CountryCode, str] | None:
    """The country code and national number `phonenumbers.parse(phone, None)` finds in a
    string that is `+` and ASCII digits; None when this shortcut cannot be sure.

    It follows `parse` step by step: the country code is the first 1-3 digits that are
    one (codes are prefix-free); the rest is the national number, leading zeros kept the
    way `parse` keeps them (so its E.164 form is `phone` itself). `parse` may strip a
    national prefix from that rest, so when the prefix pattern matches, `parse` decides.
    """
    match = _E164_SHAPE.fullmatch(phone)
    if match is None:
        return None
    digits = match[1]
    for length in (1, 2, 3):
        if int(digits[:length]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = digits[length:]
    if not _NATIONAL_LENGTH_MIN <= len(national) <= _NATIONAL_LENGTH_MAX:
        return None
    rules = _country_code(int(digits[:length]))
    if rules is None:
        return None
    prefix = rules.national_prefix_for_parsing
    if prefix is not None and prefix.match(national):
        return None
    return rules, national


@functools.lru_cache(maxsize=65_536)
def phone_e164(phone: str) -> tuple[str | None, str | None]:
    """(E.164, None) or (None, error), as `phonenumbers` parses, validates and formats
    `phone`. Cached: the answer depends only on the string, and uploads repeat numbers."""
    shape = _e164_shape(phone)
    if shape is not None:
        rules, national = shape
        return (phone, None) if rules.is_valid(national) else (None, PHONE_INVALID)
    try:
        parsed = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return None, PHONE_UNPARSABLE
    if not phonenumbers.is_valid_number(parsed):
        return None, PHONE_INVALID
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), None
