"""Readings of work waiting somewhere (a backlog, an age), for `/metrics` and `/healthz`.

`config/` knows no app. Each app knows its own backlog and registers a probe for it in its
`AppConfig.ready()`:

    probe_register(Probe(name="postbacks", source="database", read=postback_probe_read,
                         errors=(DatabaseError,)))

`/metrics` turns every reading's gauges into Prometheus gauges (and
`creditflow_metrics_source_up{source}` = 0 when a probe of that source raised one of its
`errors`); `/healthz` shows each reading's `health` fields under `"queues"` and calls the
queues stuck when a reading has `stuck` reasons. A probe whose source is down (the database
or Redis) is not read by `/healthz`, which reports that source as unavailable instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Gauge:
    name: str
    documentation: str
    # {label values: value}; an unlabelled gauge has the single key ().
    samples: Mapping[tuple[str, ...], float]
    label_names: tuple[str, ...] = ()

    @classmethod
    def single(cls, name: str, documentation: str, value: float) -> Gauge:
        return cls(name=name, documentation=documentation, samples={(): value})


@dataclass(frozen=True)
class Reading:
    gauges: tuple[Gauge, ...] = ()
    health: Mapping[str, object] = field(default_factory=dict)
    # Why the work counts as stuck (a sentence each), empty when it is moving.
    stuck: tuple[str, ...] = ()


@dataclass(frozen=True)
class Probe:
    # Names the probe in `/healthz` (`<name>_error` when it cannot be read).
    name: str
    # What it reads: "database", "redis" or a name of its own (such as "click_spool").
    source: str
    read: Callable[[], Reading]
    # The failures that mean "this source cannot be read right now".
    errors: tuple[type[Exception], ...]
    in_health: bool = True


_probes: dict[str, Probe] = {}


def probe_register(probe: Probe) -> None:
    """Add (or replace, by name) a probe; call from an `AppConfig.ready()`."""
    _probes[probe.name] = probe


def probe_list() -> list[Probe]:
    return list(_probes.values())
