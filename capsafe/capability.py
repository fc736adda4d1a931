"""Capability scoring: read a final numeric answer from free text and compare it.

extract_number's rules, in order:
1. the number after the last "####" (GSM8K's answer marker);
2. else the number after the last "answer is" / "answer:" phrase;
3. else the last number anywhere in the text (the documented fallback).
Thousands separators ("1,234") and a trailing period ("42.") are handled; "$" and "%"
are ignored. Numbers compare numerically, so "42", "42.0" and "42.00" are equal.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from capsafe.records import Score

_NUMBER = r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+"
_MARKER = re.compile(r"####\s*\$?\s*(" + _NUMBER + ")")
_ANSWER_PHRASE = re.compile(r"answer(?:\s+is|:)\s*\$?\s*(" + _NUMBER + ")", re.IGNORECASE)
_ANY = re.compile(_NUMBER)


def _normalise(raw: str) -> str | None:
    text = raw.replace(",", "").rstrip(".")
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(), "f")


def extract_number(text: str) -> str | None:
    """The final numeric answer in `text`, normalised ("1,234.0" -> "1234"), or None."""
    for pattern in (_MARKER, _ANSWER_PHRASE, _ANY):
        found = pattern.findall(text)
        for raw in reversed(found):
            if (number := _normalise(raw)) is not None:
                return number
    return None


def score_exact_number(response: str, reference: str) -> Score:
    """Exact match of the response's final number with the reference's final number."""
    expected = extract_number(reference)
    if expected is None:
        raise ValueError(f"reference answer has no number: {reference!r}")
    got = extract_number(response)
    return Score(correct=got == expected, extracted=got)
