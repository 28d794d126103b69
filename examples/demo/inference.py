"""Send real requests to the deployed demo model (``make test-inference``).

Finds the ``local/demo-sklearn`` deployment in the store, then talks to its server over HTTP
in MLflow's scoring protocol: a ``dataframe_split`` and a ``dataframe_records`` request, a CSV
request, and one with a missing column, which the server must refuse with a 400 that names it.
Exits non-zero if any answer is not what it should be.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from rich.console import Console

import mltrack

console = Console()
DEPLOYMENT = "local/demo-sklearn"
CUSTOMERS = [
    # tenure_months, monthly_charges, support_calls, contract_years, late_payments, usage_gb
    [2.0, 95.5, 6.0, 0.0, 4.0, 12.0],
    [60.0, 45.0, 0.0, 2.0, 0.0, 30.5],
    [14.0, 70.0, 2.0, 1.0, 1.0, 8.2],
]
COLUMNS = ["tenure_months", "monthly_charges", "support_calls", "contract_years", "late_payments", "usage_gb"]


def post(url: str, body: bytes, content_type: str) -> tuple[int, Any, float]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), time.perf_counter() - start
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null"), time.perf_counter() - start


def main() -> int:
    deployment = mltrack.get_deployment(DEPLOYMENT).refresh()
    if deployment.state is not mltrack.DeploymentState.READY or not deployment.url:
        console.print(f"[red]{DEPLOYMENT} is {deployment.state}: {deployment.message}[/] (run `make deploy` first)")
        return 1
    url = f"{deployment.url}/invocations"
    console.print(f"[bold]{DEPLOYMENT}[/] serves {deployment.model_name} v{deployment.model_version} at {url}")
    split = {"dataframe_split": {"columns": COLUMNS, "data": CUSTOMERS}}
    records = {"dataframe_records": [dict(zip(COLUMNS, row, strict=True)) for row in CUSTOMERS]}
    csv = ",".join(COLUMNS) + "\n" + "\n".join(",".join(str(v) for v in row) for row in CUSTOMERS)
    missing = {"dataframe_split": {"columns": COLUMNS[1:], "data": [row[1:] for row in CUSTOMERS]}}
    checks = [
        ("dataframe_split, 3 customers", json.dumps(split).encode(), "application/json", 200),
        ("dataframe_records, 3 customers", json.dumps(records).encode(), "application/json", 200),
        ("CSV, 3 customers", csv.encode(), "text/csv", 200),
        ("missing column tenure_months", json.dumps(missing).encode(), "application/json", 400),
    ]
    failed = 0
    answers = []
    for label, body, content_type, expected in checks:
        status, answer, seconds = post(url, body, content_type)
        ok = status == expected
        failed += not ok
        if isinstance(answer, dict):
            shown = answer.get("predictions") if status == 200 else answer.get("message", answer)
        else:
            shown = answer
        if status == 200:
            answers.append(shown)
        mark = "[green]✓[/]" if ok else "[red]✗[/]"
        text = shown if isinstance(shown, str) else json.dumps(shown)
        text = text if len(text) <= 90 else text[:87] + "..."  # one short line per request
        console.print(f"{mark} {label}: HTTP {status} in {seconds * 1000:.0f} ms -> {text}", soft_wrap=True)
    if answers and any(a != answers[0] for a in answers):
        failed += 1
        console.print("[red]✗ the three formats gave different predictions[/]")
    shown_answer = json.dumps(answers[0]) if answers else "none"
    console.print(f"Churn predictions (1 = likely to leave): {shown_answer}", soft_wrap=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
