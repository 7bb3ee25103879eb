"""Rewrite a generated block of README.md, between `<!-- NAME:start -->` and `<!-- NAME:end -->`."""

from __future__ import annotations


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
