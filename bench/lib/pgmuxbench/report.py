"""Render bench/RESULTS.md from the raw runs."""

from __future__ import annotations

import statistics

TARGET_LABEL = {
    "direct": "direct",
    "pgbouncer": "PgBouncer",
    "pgmux": "pgmux",
    "pgmux_replica": "pgmux + replica",
    "pgmux_nostats": "pgmux, query_stats off",
    "pgmux_advice": "pgmux + index advisor",
}


def _med(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None, None, None
    return statistics.median(vals), min(vals), max(vals)


def _fmt_num(v, digits):
    if v is None:
        return "—"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def fmt_range(vals, digits=1, scale=1.0):
    vals = [v * scale for v in vals if v is not None]
    med, lo, hi = _med(vals)
    if med is None:
        return "—"
    if len(vals) == 1 or lo == hi:
        return _fmt_num(med, digits)
    return f"{_fmt_num(med, digits)} ({_fmt_num(lo, digits)}–{_fmt_num(hi, digits)})"


def case_label(case: dict) -> str:
    parts = []
    if case.get("script") == "tpcb":
        parts.append("TPC-B")
    elif case.get("connect_per_txn"):
        parts.append("select-only -C")
    parts.append(f"-M {case['mode']}")
    parts.append(f"{case['clients']} clients")
    return ", ".join(parts)


def _case_key(case: dict) -> tuple:
    return (case.get("script"), case["mode"], case["clients"], bool(case.get("connect_per_txn")))


def _group(runs):
    cases: dict[tuple, dict] = {}
    for r in runs:
        k = _case_key(r["case"])
        cases.setdefault(k, {"case": r["case"], "by_target": {}})
        cases[k]["by_target"].setdefault(r["target"], []).append(r)
    return list(cases.values())


def _ok(rs):
    return [r for r in rs if r["status"] == "ok"]


def _fail_cell(rs):
    unsupported = [r for r in rs if r["status"] == "unsupported"]
    if unsupported and len(unsupported) == len(rs):
        return "unsupported"
    failed_tx = sum((r.get("failed_transactions") or 0) for r in rs)
    aborted = sum((r.get("aborted_clients") or 0) for r in rs)
    bad = [r for r in rs if r["status"] not in ("ok", "unsupported")]
    cell = str(failed_tx)
    if aborted or bad:
        cell += f" / {len(bad)} run(s) failed"
        if aborted:
            cell += f", {aborted} clients aborted"
    return cell


def ratio_values(num_runs: list[dict], den_runs: list[dict], metric: str) -> list[float]:
    """Per-repetition ratios num/den of metric over successful runs, paired by
    repetition (runs of one repetition were made close together)."""
    a = {r["rep"]: r.get(metric) for r in _ok(num_runs)}
    b = {r["rep"]: r.get(metric) for r in _ok(den_runs)}
    return [a[k] / b[k] for k in a if k in b and a[k] and b[k]]


def ratio_median(num_runs: list[dict], den_runs: list[dict], metric: str) -> float | None:
    """Median of the per-repetition ratios as a number (None if no pair), for
    checks against targets; same figure _ratio prints."""
    med, _, _ = _med(ratio_values(num_runs, den_runs, metric))
    return med


def _ratio(by_target, num, den, metric):
    """Median (min–max) of per-repetition ratios num/den: each ratio compares
    two runs made seconds apart."""
    vals = ratio_values(by_target.get(num, []), by_target.get(den, []), metric)
    return fmt_range(vals, 2)


def throughput_section(title: str, runs: list[dict], targets: list[str],
                       ratios: list[tuple[str, str]], intro: str = "", selected: bool = True) -> str:
    lines = [f"## {title}", ""]
    if not selected:
        return "\n".join(lines + ["_Not selected (`--only`)._", ""])
    if intro:
        lines += [intro, ""]
    if not runs:
        lines += ["_Not run (see Notes)._", ""]
        return "\n".join(lines)
    lines += [
        "| case | target | TPS | latency ms | failed txns / errors | pooler CPU µs/txn | pooler CPU % | peak RSS MiB | RSS MiB | runs |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    groups = _group(runs)
    notes = []
    for g in groups:
        for t in targets:
            rs = g["by_target"].get(t)
            if not rs:
                continue
            ok = _ok(rs)
            if ok:
                row = [
                    fmt_range([r["tps"] for r in ok], 0),
                    fmt_range([r["latency_ms"] for r in ok], 3),
                    _fail_cell(rs),
                    fmt_range([r.get("cpu_us_per_txn") for r in ok], 1),
                    fmt_range([r.get("cpu_pct") for r in ok], 0),
                    fmt_range([r.get("peak_rss_kib") for r in ok], 1, 1 / 1024),
                    fmt_range([r.get("rss_kib") for r in ok], 1, 1 / 1024),
                ]
            else:
                row = ["—", "—", _fail_cell(rs), "—", "—", "—", "—"]
            lines.append(f"| {case_label(g['case'])} | {TARGET_LABEL.get(t, t)} | "
                         + " | ".join(row) + f" | {len(ok)}/{len(rs)} |")
            for r in rs:
                if r["status"] != "ok" and r.get("errors"):
                    note = (f"{case_label(g['case'])}, {TARGET_LABEL.get(t, t)}: "
                            f"{r['status']}: {' | '.join(r['errors'][:2])}")
                    if note not in notes:
                        notes.append(note)
    lines.append("")
    if notes:
        lines += ["Not run / failed:", ""] + [f"- {n}" for n in notes] + [""]
    if ratios:
        present = {t for g in groups for t in g["by_target"]}
        ratios = [(a, b) for a, b in ratios if a in present and b in present]
    if ratios:
        hdr = ["case"]
        for a, b in ratios:
            hdr.append(f"TPS {TARGET_LABEL[a]}/{TARGET_LABEL[b]}")
        cpu_pairs = [(a, b) for a, b in ratios if a != "direct" and b != "direct"]
        for a, b in cpu_pairs:
            hdr.append(f"CPU/txn {TARGET_LABEL[a]}/{TARGET_LABEL[b]}")
        lines += ["Ratios (median of per-repetition ratios, min–max):", "",
                  "| " + " | ".join(hdr) + " |", "|---" + "|---:" * (len(hdr) - 1) + "|"]
        for g in groups:
            row = [case_label(g["case"])]
            for a, b in ratios:
                row.append(_ratio(g["by_target"], a, b, "tps"))
            for a, b in cpu_pairs:
                row.append(_ratio(g["by_target"], a, b, "cpu_us_per_txn"))
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)


def idle_section(idle: list[dict], pool_size: int, selected: bool = True) -> str:
    lines = ["## Idle clients", ""]
    if not selected:
        return "\n".join(lines + ["_Not selected (`--only`)._", ""])
    if not idle:
        return "\n".join(lines + ["_Not run (see Notes)._", ""])
    lines += [
        "Each pooler is restarted, one login primes it, then N clients log in (full "
        "SCRAM authentication, at most `inflight` logins in progress at once) and stay idle. "
        f"Server connections must stay at or below the pool size ({pool_size}).",
        "",
        "| pooler | clients | connected / failed | login time s | logins/s | pooler CPU µs/login | RSS before MiB | RSS held MiB | RSS growth KiB/client | server conns | dropped while held |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for r in idle:
        if r["status"] not in ("ok", "partial"):
            lines.append(f"| {TARGET_LABEL.get(r['target'], r['target'])} | {r['clients']:,} | "
                         f"{r['status']} | — | — | — | — | — | — | — | — |")
            if r.get("error"):
                notes.append(f"{TARGET_LABEL.get(r['target'], r['target'])}, {r['clients']:,}: {r['error']}")
            continue
        sc = r.get("server_conns")
        sc_cell = "—" if sc is None else (f"{sc}" + ("" if sc <= pool_size else " (over pool size!)"))
        lines.append(
            f"| {TARGET_LABEL.get(r['target'], r['target'])} | {r['clients']:,} | "
            f"{r['connected']:,} / {r['failed']:,} | {_fmt_num(r['login_s'], 2)} | "
            f"{_fmt_num(r['logins_per_s'], 0)} | {_fmt_num(r.get('cpu_us_per_login'), 0)} | "
            f"{_fmt_num(r['rss_before_kib'] / 1024, 1)} | {_fmt_num(r['rss_held_kib'] / 1024, 1)} | "
            f"{_fmt_num(r['rss_kib_per_client'], 2)} | {sc_cell} | {r.get('dropped', 0)} |")
        if r.get("error"):
            notes.append(f"{TARGET_LABEL.get(r['target'], r['target'])}, {r['clients']:,}: {r['error']}")
    lines.append("")
    if notes:
        lines += ["Errors:", ""] + [f"- {n}" for n in notes] + [""]
    by = {(r["target"], r["clients"]): r for r in idle if r["status"] in ("ok", "partial")}
    counts = sorted({r["clients"] for r in idle})
    if any(("pgmux", n) in by and ("pgbouncer", n) in by for n in counts):
        lines += ["| clients | RSS/client pgmux/PgBouncer | login time pgmux/PgBouncer |", "|---:|---:|---:|"]
        for n in counts:
            a, b = by.get(("pgmux", n)), by.get(("pgbouncer", n))
            if not a or not b:
                continue
            rr = (a["rss_kib_per_client"] / b["rss_kib_per_client"]) if b["rss_kib_per_client"] else None
            lr = (a["login_s"] / b["login_s"]) if b["login_s"] else None
            lines.append(f"| {n:,} | {_fmt_num(rr, 2)} | {_fmt_num(lr, 2)} |")
        lines.append("")
    return "\n".join(lines)


def render(meta: dict, runs: list[dict], idle: list[dict]) -> str:
    p = meta["parameters"]
    m = meta["machine"]
    v = meta["versions"]
    out = ["# pgmux benchmark results", ""]
    if p.get("quick"):
        out += ["> **Quick run** (`--quick`: 1 repetition, short runs, fewer client counts) — "
                "for development only, not representative; do not commit.", ""]
    out += [
        f"Generated by `{meta['command']}` on {meta['started_at']} (finished {meta['finished_at']}, "
        f"{meta['elapsed_min']:.1f} min). Raw runs: `{meta['json_path']}`. "
        "Column meanings and caveats: [bench/README.md](README.md).",
        "",
        "## Machine",
        "",
        f"- CPUs: {m['nproc']} × {m['cpu_model']}",
        f"- Memory: {m['memory']}",
        f"- Kernel: {m['kernel']} ({m['os']})",
        f"- Load average (1/5/15 min) at start / end: {' '.join(map(str, m['loadavg_start']))} / "
        f"{' '.join(map(str, m.get('loadavg_end') or ['?']))} (other jobs on the machine add noise)",
        "",
        "## Versions",
        "",
        f"- PostgreSQL: {v['postgresql']}",
        f"- pgbench: {v['pgbench']}",
        f"- PgBouncer: {v['pgbouncer']}",
        f"- pgmux: {v['pgmux']}",
        "",
        "## Parameters",
        "",
        f"- Repetitions: {p['reps']} × {p['duration']} s per run; targets interleaved, order rotated every "
        "repetition and case; medians with min–max over repetitions.",
        f"- pgbench: scale {p['scale']}, `-j {p['jobs']}`, `-n` (tables vacuumed directly before each TPC-B run), "
        f"select-only (`-S`) client counts {', '.join(map(str, p['clients']))}; TPC-B and churn (`-C -S`) at "
        f"{p['tpcb_clients']} clients.",
        f"- Pool size: {p['pool_size']} server connections per pooler (transaction pooling); PgBouncer "
        f"`default_pool_size={p['pool_size']}`, `max_client_conn=20000`, auth {p['auth']} "
        f"(PgBouncer auth_file: {'the stored secret from pg_authid' if p.get('pgbouncer_userlist') == 'secret' else 'plain password'}).",
        f"- PostgreSQL: {p['postgres_settings']}.",
        f"- Idle clients: {', '.join(f'{n:,}' for n in p['idle_counts'])} connections, at most "
        f"{p['idle_inflight']} logins in flight, open-files limit {p['nofile']}.",
        f"- Scenarios: {', '.join(p['scenarios'])}.",
        "",
    ]
    if meta.get("notes"):
        out += ["## Notes", ""] + [f"- {n}" for n in meta["notes"]] + [""]
    three = ["direct", "pgbouncer", "pgmux"]
    sel = set(p["scenarios"])
    ratios = [("pgmux", "pgbouncer"), ("pgmux", "direct"), ("pgbouncer", "direct")]
    out.append(throughput_section(
        "Select-only (`pgbench -S`)", [r for r in runs if r["scenario"] == "select"], three, ratios,
        "TPS excludes the initial connection time. `prepared` through PgBouncer < 1.21 is not run "
        "(no protocol-level prepared statements in transaction mode).", "select" in sel))
    out.append(throughput_section(
        "TPC-B (default script, `-M simple`)", [r for r in runs if r["scenario"] == "tpcb"], three, ratios, "", "tpcb" in sel))
    out.append(throughput_section(
        "Connection churn (`pgbench -C -S`, new connection per transaction)",
        [r for r in runs if r["scenario"] == "churn"], three, ratios,
        "TPS here includes the connection time (each transaction logs in with SCRAM); pooler CPU per "
        "transaction includes the login. pgbench connects synchronously per thread, so with `-j 2` the "
        "client side (libpq SCRAM key derivation) usually limits TPS here.", "churn" in sel))
    out.append(throughput_section(
        "Routing cost (pgmux select-only, without vs with a replica configured)",
        [r for r in runs if r["scenario"] == "routing"], ["pgmux", "pgmux_replica"],
        [("pgmux_replica", "pgmux")],
        "`pgmux + replica` has a streaming replica in `replicas`, so reads may be routed there; the CPU "
        "per transaction difference is the cost of classifying/routing.", "routing" in sel))
    out.append(throughput_section(
        "Query statistics and index advice (pgmux select-only: statistics off, on (default), advisor on)",
        [r for r in runs if r["scenario"] == "advice"], ["pgmux_nostats", "pgmux", "pgmux_advice"],
        [("pgmux", "pgmux_nostats"), ("pgmux_advice", "pgmux")],
        "`query_stats = false` turns per-shape statistics off; `pgmux + index advisor` has "
        "`[index_advice] enabled = true` (samples, EXPLAINs on a side connection).", "advice" in sel))
    out.append(idle_section(idle, p["pool_size"], "idle" in sel))
    # Imported here: targets.py uses this module's helpers (ratio_median, _ok).
    from pgmuxbench import targets
    out.append(targets.targets_section(runs, idle, p))
    return "\n".join(out).rstrip() + "\n"
