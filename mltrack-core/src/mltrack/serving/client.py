"""HTTP to a running serving app: health checks and scoring requests.

Every provider whose deployment is the serving app behind a URL (``local``; Modal's web
endpoints are plain HTTPS) talks to it through these two functions, so requests and the
errors they turn into are the same everywhere. Standard library only: no import cost.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from mltrack.errors import DeploymentError, InvalidInputError


@dataclass(frozen=True)
class Health:
    """What ``GET <url>/health`` answered: an HTTP status, or None with the reason it did not answer."""

    status: int | None
    detail: str

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def reason(self) -> str:
        """Why it is not healthy, in a few words ("HTTP 503", "Connection refused")."""
        return f"HTTP {self.status}" if self.status is not None else self.detail


def check_health(url: str, timeout: float) -> Health:
    """GET ``<url>/health`` once; the answer (never raises for an unreachable server)."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return Health(response.status, "")
    except urllib.error.HTTPError as exc:
        return Health(exc.code, _error_message(exc.read()))
    except (urllib.error.URLError, OSError) as exc:
        return Health(None, str(getattr(exc, "reason", exc)))


def invoke(deployment_id: str, url: str, payload: dict[str, Any], timeout: float) -> Any:
    """POST ``payload`` to ``<url>/invocations``; returns the predictions."""
    request = urllib.request.Request(
        f"{url}/invocations", data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        message = _error_message(exc.read())
        if 400 <= exc.code < 500 and exc.code != 404:
            raise InvalidInputError("data", payload, f"was refused by {deployment_id}: {message}") from None
        raise DeploymentError(
            f"{deployment_id} answered {exc.code}: {message}",
            hint=f"check `mltrack deployments status {deployment_id}`",
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise DeploymentError(
            f"{deployment_id} at {url} does not answer: {getattr(exc, 'reason', exc)}",
            hint=f"check `mltrack deployments status {deployment_id}`",
        ) from None
    return answer.get("predictions", answer) if isinstance(answer, dict) else answer


def _error_message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip()[:500]
    if isinstance(data, dict):
        return str(data.get("message") or data.get("detail") or data)
    return str(data)
