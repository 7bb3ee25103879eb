"""Rewrite a generated block of README.md, between `<!-- NAME:start -->` and `<!-- NAME:end -->`."""

from __future__ import annotations

import re

TIMING_ROW = re.compile(r"^\| `([^`]+)` \| ([^|]+) \|$", re.M)


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def block(text: str, name: str) -> str:
    """The current content between the markers of `name`."""
    start, end = markers(name)
    if start not in text or end not in text:
        raise ValueError(f"README.md lacks the markers {start} ... {end}")
    return text.split(start, 1)[1].split(end, 1)[0]


def replace_block(text: str, name: str, body: str) -> str:
    """`text` with the block `name` replaced by `body` (markers kept)."""
    block(text, name)  # checks the markers
    start, end = markers(name)
    head, rest = text.split(start, 1)
    return head + start + "\n" + body.strip("\n") + "\n" + end + rest.split(end, 1)[1]


def timing_rows(text: str) -> dict[str, str]:
    """The rows of the chapter timing table: notebook file name -> its time cell ("45 s")."""
    return dict(TIMING_ROW.findall(block(text, "timings")))


def slowest_first(names: list[str], text: str) -> list[str]:
    """`names` (notebook file names) ordered by the timing table, slowest first.

    Two workers that take jobs in this order finish close together (the last
    jobs are the short ones). A notebook the table lacks comes first: its
    time is unknown, so it may be long. Ties keep the order of `names`.
    """
    seconds = {name: float(cell.split()[0]) for name, cell in timing_rows(text).items()}
    return sorted(names, key=lambda name: -seconds.get(name, float("inf")))
