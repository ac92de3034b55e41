"""Mail security scanners that fetch with an ordinary browser user agent, caught by behaviour.

Link rewriters and sandboxes of mail gateways (Proofpoint, Mimecast, Barracuda, Microsoft
Defender Safe Links) open a message's links when it is delivered, all of them, from their
own data centres, for many recipients at once. Run by the drainer (and the click import)
right after a batch is inserted, in the same transaction, so the flags are there when the
clicks become visible to attribution. Each signal turns a click that was neither bot nor
preview into a preview with its reason:

- `behaviour:soon-after-send`: within `CLICK_SCANNER_AFTER_SEND_SECONDS` of its message's
  `sent_at`, on a channel in `CLICK_SCANNER_AFTER_SEND_CHANNELS` (mail by default: SMS has
  no gateway that opens links on delivery, and carriers' delivery takes seconds anyway);
- `behaviour:message-links-burst`: `CLICK_SCANNER_BURST_LINKS` or more different links of one
  message opened within `CLICK_SCANNER_BURST_SECONDS` of each other (every such click);
- `behaviour:shared-address`: the same truncated address and user agent clicking the links of
  `CLICK_SCANNER_SHARED_ADDRESS_CONTACTS` or more contacts within
  `CLICK_SCANNER_SHARED_ADDRESS_SECONDS` (every such click);
- `behaviour:scanner-network:<vendor>`: from a range a vendor publishes
  (`tracking/data/scanner_networks.csv`).

Addresses are stored truncated (/24, /48), so the ranges are compared in that form: a range
narrower than /24 (or /48) is widened to it. Clicks from loopback or private addresses are
never flagged by behaviour: such an address is a proxy that was not declared with
`CLICK_TRUSTED_PROXY_COUNT` or internal traffic, and says nothing about who clicked.
A person who taps later, outside these windows, stays a person. Bots stay bots.
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from functools import lru_cache
from ipaddress import ip_network
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.backends.utils import CursorWrapper

SCANNER_NETWORKS_FILE = Path(__file__).resolve().parent.parent / "data" / "scanner_networks.csv"

# Loopback, RFC 1918, IPv6 unique-local and link-local: never a scanner's address as seen here.
_LOCAL_NETWORKS = [
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
]

# The batch's own clicks that may still turn out to be scanners.
# Read from the staging table and the message, not the click table: one index lookup per
# click saved in every statement; a click is looked up only when it is to be flagged.
_CANDIDATES = """
    SELECT i.click_id, i.occurred_at, m.id AS message_id, i.link_id, m.contact_id, i.ip,
        i.user_agent, m.channel, m.sent_at
    FROM click_incoming AS i
    JOIN tracking_link AS l ON l.id = i.link_id
    JOIN tracking_message AS m ON m.id = l.message_id
    WHERE NOT i.is_bot AND NOT i.is_preview AND i.ip IS NOT NULL
      AND NOT i.ip <<= ANY(%(local)s::inet[])
"""

# Each signal is a SELECT of the clicks it catches; those found (usually none) are then
# flagged by key (`_FLAG_SQL`). One UPDATE joining the click table to the signal's rows
# was planned from the statistics of the month being written, which end at its last
# ANALYZE: the batch's times lie past them, so its clicks were estimated at one row and
# scanned as the outer side of a nested loop over the signal's rows. 5,000 clicks of one
# batch took 42 s in the burst statement instead of 0.1 s.
_SCANNER_NETWORK_SQL = f"""
SELECT candidate.click_id, candidate.occurred_at, network.vendor
FROM ({_CANDIDATES}) AS candidate,
    unnest(%(networks)s::cidr[], %(vendors)s::text[]) AS network(range, vendor)
WHERE candidate.ip <<= network.range
"""  # noqa: S608 (constant fragments only)

_SOON_AFTER_SEND_SQL = f"""
SELECT candidate.click_id, candidate.occurred_at
FROM ({_CANDIDATES}) AS candidate
WHERE candidate.channel = ANY(%(channels)s)
  AND candidate.occurred_at > candidate.sent_at - %(window)s
  AND candidate.occurred_at < candidate.sent_at + %(window)s
"""  # noqa: S608 (constant fragments only)


def _near(moment: str) -> str:
    """The non-bot clicks of `link` within the burst window of `moment` (and the batch's)."""
    return f"""other.link_id = link.id
          AND other.occurred_at >= {moment} - %(window)s
          AND other.occurred_at <= {moment} + %(window)s
          AND other.occurred_at >= %(low)s AND other.occurred_at <= %(high)s
          AND NOT other.is_bot"""


# Every non-bot click of the message within the window counts (a scanner's earlier visits
# may already be previews); only those that are still people are changed. First, per
# candidate, which links of its message had such a click near it: one index probe a link,
# which stops at the first click. Only for the candidates with clicks on enough links are the
# clicks themselves read. Reading every click of every candidate's links in the window
# first, a link clicked 1,000 times a second from public addresses (a message forwarded to
# many people) read some 4,000 clicks per candidate: 1.8-3 ms of PostgreSQL per stored click,
# and the drain fell behind.
_BURST_SQL = f"""
WITH candidate AS ({_CANDIDATES}),
clicked_links AS (
    SELECT candidate.click_id AS candidate_id, candidate.occurred_at AS candidate_at,
        candidate.message_id
    FROM candidate
    JOIN tracking_link AS link ON link.message_id = candidate.message_id
    WHERE EXISTS (
        SELECT 1 FROM tracking_click AS other
        WHERE {_near("candidate.occurred_at")}
    )
),
bursting AS (
    SELECT candidate_id, candidate_at, message_id FROM clicked_links
    GROUP BY candidate_id, candidate_at, message_id
    HAVING count(*) >= %(links)s
)
SELECT DISTINCT other.click_id, other.occurred_at
FROM bursting
JOIN tracking_link AS link ON link.message_id = bursting.message_id
CROSS JOIN LATERAL (
    SELECT other.click_id, other.occurred_at
    FROM tracking_click AS other
    WHERE {_near("bursting.candidate_at")}
    -- Kept a subquery of its own (OFFSET 0): joined flat, the planner read every click the
    -- link ever had, in every month's partition, and filtered on time after; here the time
    -- range is in each index scan and prunes the partitions.
    OFFSET 0
) AS other
"""  # noqa: S608 (constant fragments only)

# One range scan around the batch; clicks of one (address, agent) counted per window-long
# bucket, the buckets laid twice (the second offset by half a window) so that a crowd
# straddling a bucket's edge is still seen: linear, where a per-click window is quadratic.
_SHARED_ADDRESS_SQL = f"""
WITH candidate AS ({_CANDIDATES}),
pairs AS (
    SELECT ip, user_agent, min(occurred_at) AS first_at, max(occurred_at) AS last_at
    FROM candidate GROUP BY ip, user_agent
),
nearby AS (
    SELECT other.click_id, other.occurred_at, other.contact_id, other.ip, other.user_agent,
        extract(epoch FROM other.occurred_at) / %(seconds)s AS position
    FROM tracking_click AS other
    JOIN pairs ON other.ip = pairs.ip AND other.user_agent = pairs.user_agent
    WHERE other.occurred_at >= (SELECT min(first_at) FROM pairs) - %(window)s
      AND other.occurred_at <= (SELECT max(last_at) FROM pairs) + %(window)s
      AND other.occurred_at >= pairs.first_at - %(window)s
      AND other.occurred_at <= pairs.last_at + %(window)s
      AND other.occurred_at >= %(low)s AND other.occurred_at <= %(high)s
      AND NOT other.is_bot
),
bucketed AS (
    SELECT click_id, occurred_at, contact_id, ip, user_agent, 0 AS layout,
        floor(position) AS bucket
    FROM nearby
    UNION ALL
    SELECT click_id, occurred_at, contact_id, ip, user_agent, 1, floor(position + 0.5)
    FROM nearby
),
crowds AS (
    SELECT ip, user_agent, layout, bucket FROM bucketed
    GROUP BY ip, user_agent, layout, bucket
    HAVING count(DISTINCT contact_id) >= %(contacts)s
)
SELECT DISTINCT bucketed.click_id, bucketed.occurred_at
FROM bucketed JOIN crowds USING (ip, user_agent, layout, bucket)
"""  # noqa: S608 (constant fragments only)

# The clicks a signal caught, by their unique key; the times as constants also leave out
# every month none of them is in. Bots stay bots, and a click already flagged keeps the
# reason of the signal that caught it first.
_FLAG_SQL = """
UPDATE tracking_click
SET is_preview = TRUE, flag_reason = %(reason)s
WHERE click_id = ANY(%(click_ids)s::text[])
  AND occurred_at = ANY(%(times)s::timestamptz[])
  AND NOT is_bot AND NOT is_preview
"""


_LOCAL = [ip_network(network) for network in _LOCAL_NETWORKS]
_BOUND_SLACK = timedelta(seconds=1)
_NETWORK_REASON = "behaviour:scanner-network:"


@lru_cache(maxsize=65_536)
def address_is_public(address: str | None) -> bool:
    """Not loopback, private or link-local (the stored, truncated form is enough)."""
    if not address:
        return False
    try:
        network = ip_network(address)
    except ValueError:
        return False
    return not any(
        network.version == local.version and network.subnet_of(local)  # type: ignore[arg-type]
        for local in _LOCAL
    )


@lru_cache(maxsize=1)
def scanner_networks() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(ranges, vendors) from the data file, each range widened to the stored truncation."""
    networks: list[str] = []
    vendors: list[str] = []
    with SCANNER_NETWORKS_FILE.open(newline="", encoding="utf-8") as file:
        for row in csv.DictReader(line for line in file if not line.startswith("#")):
            network = ip_network(row["network"].strip(), strict=False)
            widest = 24 if network.version == 4 else 48
            if network.prefixlen > widest:
                network = network.supernet(new_prefix=widest)
            networks.append(str(network))
            vendors.append(row["vendor"].strip())
    return tuple(networks), tuple(vendors)


def clicks_flag_scanners(*, cursor: CursorWrapper, first: datetime, last: datetime) -> None:
    """Flag the scanners among the clicks just inserted from `click_incoming`, whose times
    lie from `first` to `last`.

    The network and soon-after-send signals read only the staged rows. The burst and
    shared-address ones also read the click table around the batch, bounded by constant
    times (the batch's, widened by the signal's window): the planner then leaves out the
    months outside them, where a bound that comes from the staged rows is only known when
    the statement runs, and every month of the click table was planned each batch. A
    second of slack each way: the times given and the times stored may round apart.
    """
    first, last = first - _BOUND_SLACK, last + _BOUND_SLACK
    networks, vendors = scanner_networks()
    if networks:
        _execute(
            cursor,
            _SCANNER_NETWORK_SQL,
            networks=list(networks),
            vendors=list(vendors),
        )
    after_send = settings.CLICK_SCANNER_AFTER_SEND_SECONDS
    if after_send > 0 and settings.CLICK_SCANNER_AFTER_SEND_CHANNELS:
        _execute(
            cursor,
            _SOON_AFTER_SEND_SQL,
            reason="behaviour:soon-after-send",
            window=timedelta(seconds=after_send),
            channels=list(settings.CLICK_SCANNER_AFTER_SEND_CHANNELS),
        )
    if settings.CLICK_SCANNER_BURST_LINKS > 1:
        window = timedelta(seconds=settings.CLICK_SCANNER_BURST_SECONDS)
        _execute(
            cursor,
            _BURST_SQL,
            reason="behaviour:message-links-burst",
            low=first - window,
            high=last + window,
            window=window,
            links=settings.CLICK_SCANNER_BURST_LINKS,
        )
    if settings.CLICK_SCANNER_SHARED_ADDRESS_CONTACTS > 1:
        window = timedelta(seconds=settings.CLICK_SCANNER_SHARED_ADDRESS_SECONDS)
        _execute(
            cursor,
            _SHARED_ADDRESS_SQL,
            reason="behaviour:shared-address",
            low=first - window,
            high=last + window,
            window=window,
            seconds=settings.CLICK_SCANNER_SHARED_ADDRESS_SECONDS,
            contacts=settings.CLICK_SCANNER_SHARED_ADDRESS_CONTACTS,
        )


def _execute(cursor: CursorWrapper, sql: str, reason: str = "", **params: Any) -> None:
    """Run one signal's SELECT and flag what it caught: with `reason`, every row it gave;
    without, each row by its third column (the network's vendor)."""
    params["local"] = _LOCAL_NETWORKS
    cursor.execute(sql, params)
    caught: dict[str, tuple[list[str], list[datetime]]] = {}
    for row in cursor.fetchall():
        click_ids, times = caught.setdefault(reason or f"{_NETWORK_REASON}{row[2]}", ([], []))
        click_ids.append(row[0])
        times.append(row[1])
    for flag_reason, (click_ids, times) in caught.items():
        cursor.execute(
            _FLAG_SQL,
            {"reason": flag_reason, "click_ids": click_ids, "times": sorted(set(times))},
        )
