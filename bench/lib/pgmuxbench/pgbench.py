"""Parse pgbench (PostgreSQL 15) output."""

from __future__ import annotations

import re

_NUM = r"([0-9]+(?:\.[0-9]+)?)"


def parse(stdout: str, stderr: str) -> dict:
    out: dict = {}
    m = re.search(r"number of transactions actually processed:\s*([0-9]+)", stdout)
    out["transactions"] = int(m.group(1)) if m else None
    m = re.search(r"number of failed transactions:\s*([0-9]+)", stdout)
    out["failed_transactions"] = int(m.group(1)) if m else 0
    m = re.search(r"latency average = " + _NUM + " ms", stdout)
    out["latency_ms"] = float(m.group(1)) if m else None
    m = re.search(r"latency stddev = " + _NUM + " ms", stdout)
    out["latency_stddev_ms"] = float(m.group(1)) if m else None
    m = re.search(r"initial connection time = " + _NUM + " ms", stdout)
    out["initial_connection_ms"] = float(m.group(1)) if m else None
    m = re.search(r"average connection time = " + _NUM + " ms", stdout)
    out["average_connection_ms"] = float(m.group(1)) if m else None
    m = re.search(r"^tps = " + _NUM + r" \(([^)]*)\)", stdout, re.M)
    out["tps"] = float(m.group(1)) if m else None
    out["tps_basis"] = m.group(2) if m else None
    aborted = re.findall(r"^pgbench: error: client (\d+) aborted", stderr, re.M)
    aborted += re.findall(r"^client (\d+) aborted", stderr, re.M)
    out["aborted_clients"] = len(set(aborted))
    out["errors"] = error_summary(stderr)
    return out


def error_summary(stderr: str, limit: int = 4) -> list[str]:
    """A few distinct error lines (client numbers stripped so they dedupe)."""
    seen: list[str] = []
    for line in stderr.splitlines():
        line = line.strip()
        if not line or line.startswith("pgbench (") or "warning" in line.lower() and "error" not in line.lower():
            continue
        norm = re.sub(r"client \d+", "client N", line)
        norm = re.sub(r"P0_\d+", "P0_N", norm)
        if norm not in seen:
            seen.append(norm)
        if len(seen) >= limit:
            break
    return seen
