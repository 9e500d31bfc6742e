"""Registered domains (the part of a name its owner bought), from tldextract's bundled public-suffix snapshot."""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _extractor() -> Any:
    """The bundled public-suffix snapshot; an empty URL list means it never fetches one at run time. Made on first
    use: tldextract brings requests and urllib3, a sixth of connhunt's start-up, and only DNS rows need it."""
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@lru_cache(maxsize=65536)
def registered_domain(name: str) -> str:
    parts = _extractor()(name)
    if parts.suffix and parts.domain:
        return f"{parts.domain}.{parts.suffix}"
    # Private or reserved TLDs (.example, .internal, .lan) have no public suffix: use the last two labels.
    labels = [x for x in name.split(".") if x]
    return ".".join(labels[-2:]) if len(labels) >= 2 else name


@lru_cache(maxsize=1)
def deciding_labels() -> int:
    """How many trailing labels decide a registered domain: the longest public-suffix rule (a wildcard's ``*``
    counts as the label it stands for) plus the owner's label. The suffix lookup walks from the right and never
    reads further, so names that share this many last labels share their registered domain."""
    return max(rule.count(".") + 1 for rule in _extractor().tlds) + 1
