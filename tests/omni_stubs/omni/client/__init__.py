"""Stand-in for ``omni.client`` (tests only): URL parsing.

``break_url(url)`` and the fields of the ``Url`` it returns follow the Omniverse Client
Library's Python API (``omni.client.break_url``; the C struct ``OmniClientUrl``): scheme,
user, host, port, path, query, fragment, with ``None`` for a missing part. A plain local
path (``/data/scene.usd``, ``C:/data/scene.usd``) has no scheme.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

TEST_HELPERS = ()

_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


class Url:
    def __init__(self, scheme=None, user=None, host=None, port=None, path=None, query=None, fragment=None,
                 is_raw=False) -> None:
        self.scheme, self.user, self.host, self.port = scheme, user, host, port
        self.path, self.query, self.fragment, self.is_raw = path, query, fragment, is_raw


def break_url(url: str) -> Url:
    if _DRIVE.match(url) or "://" not in url and not url.startswith("file:"):
        return Url(path=url.replace("\\", "/"), is_raw=bool(_DRIVE.match(url)))
    parts = urlsplit(url)
    return Url(scheme=parts.scheme or None, user=parts.username, host=parts.hostname,
               port=str(parts.port) if parts.port else None, path=unquote(parts.path) or None,
               query=parts.query or None, fragment=parts.fragment or None)
