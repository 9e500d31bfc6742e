"""Registered domains (the part of a name its owner bought), from tldextract's bundled public-suffix snapshot."""

from __future__ import annotations

from functools import lru_cache

import tldextract

# The bundled public-suffix snapshot; an empty URL list means it never fetches one at run time.
_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@lru_cache(maxsize=65536)
def registered_domain(name: str) -> str:
    parts = _EXTRACT(name)
    if parts.suffix and parts.domain:
        return f"{parts.domain}.{parts.suffix}"
    # Private or reserved TLDs (.example, .internal, .lan) have no public suffix: use the last two labels.
    labels = [x for x in name.split(".") if x]
    return ".".join(labels[-2:]) if len(labels) >= 2 else name
