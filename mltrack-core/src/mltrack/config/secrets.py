"""Masking secrets in anything MLTrack shows: CLI output, the UI's JSON, plugin pages.

``mask_secrets`` is the one rule set for every place a configuration, a deployment record
or a store URI is printed or served. Plugins that show such values (a page of their own in
the UI, a CLI command) call it too, so a password never depends on which screen shows it.

Two kinds of rule apply:

- **By key name.** A value stored under a secret-looking name (``password``, ``secret``,
  ``credentials``, ``api_key``, ``auth_token``, ``AWS_SECRET_ACCESS_KEY``, ...) is replaced
  whole. ``None`` and ``""`` stay as they are, so "not set" remains visible.
- **By value.** Inside any string, whatever its key: the password of a URL's userinfo
  (``postgresql://app:pw@db/x`` -> ``postgresql://app:********@db/x``), the value of a
  secret-looking ``name=value`` pair (a query parameter such as ``?password=`` or ``&token=``,
  an ``ENV_PASSWORD=...`` assignment, a libpq ``password=...`` keyword), and a ``Bearer``
  credential.

Secret wrappers such as pydantic's ``SecretStr`` are masked wherever they appear.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MASK", "is_secret_name", "mask_secrets"]

MASK = "********"

# Words that make a name secret wherever they appear in it ("db_password", "secret_name").
_SECRET_WORDS = frozenset(
    {"password", "passwd", "passphrase", "secret", "credential", "credentials", "apikey", "authorization"}
)
# Words that make a name secret only as its last word: "api_key" and "auth_token" are
# secrets, "key_id", "token_url" and "max_tokens" are not. A bare "key" is not either:
# {"key": "loss", "value": 0.1} is a metric record, not a credential.
_SECRET_LAST_WORDS = frozenset({"token", "key", "signature", "sig"})
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")

# scheme://user:password@host -- the password may hold "@" or ":" (people do not always
# percent-encode), so the userinfo runs to the last "@" before the path, query or fragment.
_URL_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@]*:)(?P<password>[^\s/?#]*)@")
# name=value after the start, whitespace, "?", "&", ";" or ",": query strings, env
# assignments, key=value connection strings. The value is quoted, or runs to the next separator.
_NAME_VALUE = re.compile(
    r"(?P<head>(?:^|(?<=[\s?&;,]))(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)=)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s&;,#]*)"
)
_BEARER = re.compile(r"(?P<head>\bBearer\s+)(?P<value>[A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    """True when a value stored under ``name`` should never be shown.

    Names are split into words at ``_``, ``-``, ``.``, spaces and camelCase boundaries, so
    ``apiKey``, ``X-Api-Key`` and ``MLTRACK_PLUGINS__UI__AUTH_TOKEN`` are all recognised.
    """
    words: list[str] = [w.lower() for w in _WORD.findall(name)]
    if not words:
        return False
    if any(word in _SECRET_WORDS for word in words):
        return True
    if len(words) == 1:
        return words[0] == "token"
    return words[-1] in _SECRET_LAST_WORDS


def _mask_userinfo(match: re.Match[str]) -> str:
    return f"{match['head']}{MASK}@" if match["password"] else match[0]


def _mask_pair(match: re.Match[str]) -> str:
    if match["value"] and is_secret_name(match["name"]):
        return f"{match['head']}{MASK}"
    return match[0]


def _mask_text(text: str) -> str:
    # Cheap guards first: most strings shown (names, states, paths) hold none of these.
    if "://" in text:
        text = _URL_USERINFO.sub(_mask_userinfo, text)
    if "=" in text:
        text = _NAME_VALUE.sub(_mask_pair, text)
    if "earer" in text:
        text = _BEARER.sub(lambda m: f"{m['head']}{MASK}", text)
    return text


def mask_secrets(value: Any, key: str = "") -> Any:
    """``value`` safe to show: secrets masked by key name and by value, shape kept.

    Dicts, lists and tuples are walked (a dict's keys name the values under them); strings
    are scanned for URL passwords, secret-looking ``name=value`` pairs and ``Bearer``
    credentials; anything else is returned unchanged. The input is never modified.

    Args:
        value: what is about to be shown (a config, a record's ``as_dict()``, a URI).
        key: the name ``value`` is stored under, when it has one.

    Returns:
        A copy with every secret replaced by ``MASK``.
    """
    if key and is_secret_name(key):
        return MASK if value not in (None, "") else value
    if callable(getattr(value, "get_secret_value", None)):  # pydantic's SecretStr, SecretBytes, Secret[T]
        return MASK
    if isinstance(value, str):
        return _mask_text(value)
    if isinstance(value, dict):
        return {k: mask_secrets(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    if isinstance(value, tuple):
        return tuple(mask_secrets(v) for v in value)
    return value
