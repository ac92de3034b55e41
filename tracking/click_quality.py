"""Measuring the click flags against a labelled set of user agents and headers.

The set is a CSV (`user_agent, headers, method, label, source`): `headers` is a JSON
object of request headers (`{"No-User-Agent": "1"}` marks a request sent without a
User-Agent header), `label` is `human`, `preview` or `bot`. A click's label is
`preview` when `is_preview`, else `bot` when `is_bot`, else `human`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tracking.services.clicks import purpose_header
from tracking.services.flags import ClickFlags, click_flags

LABELS = ("human", "preview", "bot")
NO_USER_AGENT = "No-User-Agent"


@dataclass(frozen=True)
class LabelledRequest:
    user_agent: str
    headers: dict[str, str]
    method: str
    label: str
    source: str

    @property
    def sends_user_agent(self) -> bool:
        return NO_USER_AGENT not in self.headers

    def meta(self) -> dict[str, str]:
        """The request as WSGI would hand it to the redirect."""
        meta = {
            f"HTTP_{name.upper().replace('-', '_')}": value
            for name, value in self.headers.items()
            if name != NO_USER_AGENT
        }
        if self.sends_user_agent:
            meta["HTTP_USER_AGENT"] = self.user_agent
        return meta


def labelled_requests_read(*, path: Path) -> list[LabelledRequest]:
    with path.open(newline="", encoding="utf-8") as file:
        return [
            LabelledRequest(
                user_agent=row["user_agent"],
                headers=json.loads(row["headers"]) if row["headers"] else {},
                method=row["method"] or "GET",
                label=row["label"],
                source=row["source"],
            )
            for row in csv.DictReader(file)
        ]


def flags_label(*, is_bot: bool, is_preview: bool) -> str:
    if is_preview:
        return "preview"
    return "bot" if is_bot else "human"


def request_flags(request: LabelledRequest) -> ClickFlags:
    meta = request.meta()
    return click_flags(
        user_agent=meta.get("HTTP_USER_AGENT", ""),
        method=request.method,
        purpose=purpose_header(meta),
    )


@dataclass
class QualityTable:
    total: int = 0
    # confusion[expected][predicted]
    confusion: dict[str, dict[str, int]] = field(
        default_factory=lambda: {label: dict.fromkeys(LABELS, 0) for label in LABELS}
    )
    misses: list[tuple[LabelledRequest, str]] = field(default_factory=list)

    def recall(self, label: str) -> float:
        row = self.confusion[label]
        total = sum(row.values())
        return row[label] / total if total else 1.0

    def precision(self, label: str) -> float:
        predicted = sum(self.confusion[expected][label] for expected in LABELS)
        return self.confusion[label][label] / predicted if predicted else 1.0

    @property
    def human_false_positives(self) -> int:
        return self.total_of("human") - self.confusion["human"]["human"]

    def total_of(self, label: str) -> int:
        return sum(self.confusion[label].values())

    def markdown(self) -> str:
        lines = [
            "| label | rows | recall | precision | labelled human | labelled preview "
            "| labelled bot |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for label in LABELS:
            row = self.confusion[label]
            lines.append(
                f"| {label} | {self.total_of(label)} | {self.recall(label):.3f} "
                f"| {self.precision(label):.3f} | {row['human']} | {row['preview']} "
                f"| {row['bot']} |"
            )
        lines.append(
            f"\nHuman false positives: {self.human_false_positives} of {self.total_of('human')}."
        )
        return "\n".join(lines)


def quality_table(
    *, requests: Iterable[LabelledRequest], predicted: Mapping[int, str] | None = None
) -> QualityTable:
    """`predicted` (row index -> label) when the flags were read back from stored clicks."""
    table = QualityTable()
    for index, request in enumerate(requests):
        if predicted is not None:
            label = predicted[index]
        else:
            flags = request_flags(request)
            label = flags_label(is_bot=flags.is_bot, is_preview=flags.is_preview)
        table.total += 1
        table.confusion[request.label][label] += 1
        if label != request.label:
            table.misses.append((request, label))
    return table
