"""Geometry of the report page's chart, drawn server-side as inline SVG.

No JavaScript library and no CDN: the admin must work without internet. Three panels
share the x axis (one point per day): clicks, conversions, revenue, each on its own scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH = 960
PANEL_HEIGHT = 110
PANEL_GAP = 34
LEFT = 70
RIGHT = 16
TOP = 22
BOTTOM = 26


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float
    day: date
    label: str


@dataclass(frozen=True)
class ChartPanel:
    name: str
    css_class: str
    top: float
    bottom: float
    max_label: str
    points: list[ChartPoint]

    @property
    def polyline(self) -> str:
        return " ".join(f"{point.x:.1f},{point.y:.1f}" for point in self.points)

    @property
    def circles(self) -> SafeString:
        """One dot a day with its value as a tooltip, formatted here: 90 days of three
        panels took longer as template variables and filters than the rest of the chart."""
        return mark_safe(  # noqa: S308 - numbers, dates and our own class names, escaped
            "".join(
                f'<circle class="{escape(self.css_class)}" cx="{point.x:.1f}" cy="{point.y:.1f}"'
                f' r="2.5"><title>{point.day:%Y-%m-%d}: {escape(point.label)}</title></circle>'
                for point in self.points
            )
        )

    @property
    def title_y(self) -> float:
        return self.top - 6


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    right: float
    panels: list[ChartPanel]
    x_labels: list[tuple[float, str]]
    x_label_y: float


SERIES = (
    ("clicks", "Clicks", "series-clicks"),
    ("conversions", "Conversions", "series-conversions"),
    ("revenue", "Revenue", "series-revenue"),
)


def chart_build(*, series: list[dict[str, Any]]) -> Chart:
    """Place each day of `series` (dicts with day, clicks, conversions, revenue) on the chart."""
    height = TOP + len(SERIES) * PANEL_HEIGHT + (len(SERIES) - 1) * PANEL_GAP + BOTTOM
    right = WIDTH - RIGHT
    span = max(len(series) - 1, 1)

    def x_of(index: int) -> float:
        if len(series) == 1:
            return (LEFT + right) / 2
        return LEFT + (right - LEFT) * index / span

    panels = []
    for number, (field, name, css_class) in enumerate(SERIES):
        top = TOP + number * (PANEL_HEIGHT + PANEL_GAP)
        bottom = top + PANEL_HEIGHT
        values = [Decimal(item[field]) for item in series]
        highest = max(values, default=Decimal(0))
        scale = highest if highest > 0 else Decimal(1)
        points = [
            ChartPoint(
                x=x_of(index),
                y=float(bottom - (value / scale) * PANEL_HEIGHT),
                day=item["day"],
                label=_number(value, money=field == "revenue"),
            )
            for index, (item, value) in enumerate(zip(series, values, strict=True))
        ]
        panels.append(
            ChartPanel(
                name=name,
                css_class=css_class,
                top=top,
                bottom=bottom,
                max_label=_number(highest, money=field == "revenue"),
                points=points,
            )
        )
    label_every = max(1, len(series) // 8)
    x_labels = [
        (x_of(index), item["day"].strftime("%b %d"))
        for index, item in enumerate(series)
        if index % label_every == 0
        # The last day too, unless it would sit on the previous label.
        or (index == len(series) - 1 and index % label_every > label_every // 2)
    ]
    return Chart(
        width=WIDTH,
        height=height,
        left=LEFT,
        right=right,
        panels=panels,
        x_labels=x_labels,
        x_label_y=height - 8,
    )


def _number(value: Decimal, *, money: bool) -> str:
    return f"{value:,.2f}" if money else f"{value:,.0f}"
