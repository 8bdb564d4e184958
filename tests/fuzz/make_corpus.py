#!/usr/bin/env python3
"""Writes the seed corpus of the libFuzzer targets, tests/fuzz/corpus/<target>/<name>, and the
dictionaries tests/fuzz/<target>.dict.

Run it again after changing it (the files are committed). Seeds are real messages as
libpq and PostgreSQL send them, pgmux's own configs, and the SCRAM example of RFC 7677.
"""
import pathlib
import re
import struct

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def msg(t, body=b""):
    return t.encode() + struct.pack("!I", len(body) + 4) + body


def untyped(body):
    return struct.pack("!I", len(body) + 4) + body


def cstr(s):
    return (s.encode() if isinstance(s, str) else s) + b"\0"


def startup(params, protocol=196608):
    body = struct.pack("!I", protocol) + b"".join(cstr(k) + cstr(v) for k, v in params) + b"\0"
    return untyped(body)


SSL_REQUEST = untyped(struct.pack("!I", 80877103))
GSSENC_REQUEST = untyped(struct.pack("!I", 80877104))


def cancel(pid, secret):
    return untyped(struct.pack("!Iii", 80877102, pid, secret))


def query(sql):
    return msg("Q", cstr(sql))


def parse(name, sql, oids=()):
    return msg("P", cstr(name) + cstr(sql) + struct.pack("!H", len(oids)) + b"".join(struct.pack("!I", o) for o in oids))


def bind(portal, stmt, params, formats=(), result_formats=()):
    body = cstr(portal) + cstr(stmt) + struct.pack("!H", len(formats))
    body += b"".join(struct.pack("!h", f) for f in formats)
    body += struct.pack("!H", len(params))
    for p in params:
        body += struct.pack("!i", -1) if p is None else struct.pack("!i", len(p)) + p
    body += struct.pack("!H", len(result_formats)) + b"".join(struct.pack("!h", f) for f in result_formats)
    return msg("B", body)


def describe(target, name):
    return msg("D", target.encode() + cstr(name))


def close(target, name):
    return msg("C", target.encode() + cstr(name))


def execute(portal, max_rows=0):
    return msg("E", cstr(portal) + struct.pack("!i", max_rows))


SYNC = msg("S")
FLUSH = msg("H")
TERMINATE = msg("X")


def sasl_initial(mech, data):
    data = data.encode()
    return msg("p", cstr(mech) + struct.pack("!i", len(data)) + data)


def sasl_response(data):
    return msg("p", data.encode())


def password(pw):
    return msg("p", cstr(pw))


# RFC 7677 section 3: user "user", password "pencil".
CLIENT_FIRST = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
SERVER_FIRST = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
CLIENT_FINAL = ("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
SERVER_FINAL = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def auth(code, data=b""):
    return msg("R", struct.pack("!i", code) + data)


def param_status(name, value):
    return msg("S", cstr(name) + cstr(value))


def ready(status):
    return msg("Z", status.encode())


def complete(tag):
    return msg("C", cstr(tag))


def error(fields, t="E"):
    return msg(t, b"".join(k.encode() + cstr(v) for k, v in fields) + b"\0")


def row_description(cols):
    body = struct.pack("!H", len(cols))
    for name, oid in cols:
        body += cstr(name) + struct.pack("!IhIhih", 0, 0, oid, 4 if oid == 23 else -1, -1, 0)
    return msg("T", body)


def data_row(values):
    body = struct.pack("!H", len(values))
    for v in values:
        body += struct.pack("!i", -1) if v is None else struct.pack("!i", len(v)) + v
    return msg("D", body)


def frontend():
    return {
        "query_select": query("SELECT 1"),
        "query_multi": query("BEGIN; SELECT * FROM t WHERE id = 42; COMMIT;"),
        "query_empty": query(""),
        "extended_unnamed": parse("", "SELECT $1::int", [23]) + bind("", "", [b"7"], [0], [1])
        + describe("P", "") + execute("") + SYNC,
        "extended_named": parse("s1", "SELECT * FROM t WHERE a = $1 AND b = $2", [23, 25])
        + bind("p1", "s1", [b"1", None], [0, 1]) + execute("p1", 100) + FLUSH + close("P", "p1")
        + close("S", "s1") + SYNC,
        "describe_statement": describe("S", "s1") + SYNC,
        "password": password("md5a3556571e93b0d20722ba62be61e8c2d"),
        "sasl_initial": sasl_initial("SCRAM-SHA-256", CLIENT_FIRST),
        "sasl_initial_null": msg("p", cstr("SCRAM-SHA-256") + struct.pack("!i", -1)),
        "sasl_response": sasl_response(CLIENT_FINAL),
        "copy": query("COPY t FROM STDIN") + msg("d", b"1\tone\n") + msg("c"),
        "function_call": msg("F", struct.pack("!IHhHi", 1598, 1, 0, 1, 4) + b"\0\0\0\1" + struct.pack("!h", 0)),
        "terminate": TERMINATE,
        "startup_packet": startup([("user", "app"), ("database", "app")]),
    }


def backend():
    login = (auth(10, cstr("SCRAM-SHA-256") + b"\0") + auth(11, SERVER_FIRST.encode())
             + auth(12, SERVER_FINAL.encode()) + auth(0)
             + param_status("server_version", "15.8") + param_status("client_encoding", "UTF8")
             + param_status("DateStyle", "ISO, MDY") + param_status("TimeZone", "UTC")
             + param_status("integer_datetimes", "on") + param_status("standard_conforming_strings", "on")
             + msg("K", struct.pack("!ii", 12345, -559038737)) + ready("I"))
    return {
        "login_scram": login,
        "auth_md5": auth(5, b"\x01\x02\x03\x04"),
        "auth_cleartext": auth(3),
        "select_one": row_description([("?column?", 23)]) + data_row([b"1"]) + complete("SELECT 1") + ready("I"),
        "select_rows": row_description([("id", 23), ("name", 25)]) + data_row([b"1", b"alice"])
        + data_row([b"2", None]) + complete("SELECT 2") + ready("T"),
        "extended": msg("1") + msg("2") + msg("n") + complete("INSERT 0 1") + msg("3") + ready("I"),
        "error": error([("S", "ERROR"), ("V", "ERROR"), ("C", "42P01"),
                        ("M", 'relation "nope" does not exist'), ("P", "15"),
                        ("F", "parse_relation.c"), ("L", "1392"), ("R", "parserOpenTable")]) + ready("E"),
        "fatal": error([("S", "FATAL"), ("V", "FATAL"), ("C", "28P01"),
                        ("M", 'password authentication failed for user "app"')]),
        "notice": error([("S", "NOTICE"), ("V", "NOTICE"), ("C", "00000"),
                         ("M", "table does not exist, skipping"), ("D", "detail"), ("H", "hint")], "N"),
        "notification": msg("A", struct.pack("!i", 4242) + cstr("chan") + cstr("payload")),
        "copy_in": msg("G", b"\0" + struct.pack("!Hhh", 2, 0, 0)),
        "empty_query": msg("I") + ready("I"),
    }


def startup_corpus():
    scram_login = (startup([("user", "user"), ("database", "app"), ("application_name", "psql")])
                   + sasl_initial("SCRAM-SHA-256", CLIENT_FIRST) + sasl_response(CLIENT_FINAL))
    return {
        "ssl_then_scram": SSL_REQUEST + scram_login,
        "scram": scram_login,
        "gssenc_then_startup": GSSENC_REQUEST + SSL_REQUEST + startup([("user", "app")]),
        "options": startup([("user", "app"), ("database", "app"),
                            ("options", r"-c search_path=public,app --work-mem=64MB -c x\ y=a\ b"),
                            ("DateStyle", "ISO"), ("_pq_.opt", "1"), ("replication", "false")]),
        "md5": startup([("user", "md5")]) + password("md59a139b276f0bc026ba0fe102f1da3705"),
        "cancel": cancel(12345, 67890),
        "protocol_3_2": startup([("user", "app")], protocol=196610),
    }


def scram():
    return {
        "rfc7677_client": (CLIENT_FIRST + "\n" + CLIENT_FINAL).encode(),
        "rfc7677_server": (SERVER_FIRST + "\n" + SERVER_FINAL).encode(),
        "server_error": (SERVER_FIRST + "\ne=invalid-proof").encode(),
        "client_extensions": ("y,,n=,r=abc,x=ext\nc=eSws,r=abcdef,x=1,p=AAAA").encode(),
        "verifier": b"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
        "base64": b"cGVuY2lsIGFuZCBwYXBlcg==",
    }


def config():
    out = {name: (ROOT / "etc" / name).read_bytes() for name in ("pgmux.toml", "pgmux-demo.toml")}
    # The demo config is a template (scripts/demo fills in the ports).
    out["pgmux-demo.toml"] = re.sub(rb"@[A-Z_]+_PORT@", b"5432", out["pgmux-demo.toml"])
    out["minimal.toml"] = b'[databases.app]\nprimary = "127.0.0.1:5432"\n[users.app]\npassword = "x"\n'
    out["replicas.toml"] = (b'[pgmux]\nlisten = ["127.0.0.1:6432", "[::1]:6432"]\nworkers = 2\n'
                            b'[databases.app]\nprimary = "/var/run/postgresql:5432"\n'
                            b'replicas = ["10.0.0.2:5432", "10.0.0.3:5432"]\nmax_replica_lag = "16MB"\n'
                            b'read_only_functions = ["f"]\n[users.app]\n'
                            b'password = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="\n'
                            b'pool_mode = "session"\n[users.md5]\npassword = "md512acbd04a4b55346555b3fa88c638e11"\nauth = "md5"\n')
    out["hba_auth_query.toml"] = (b'[pgmux]\nauth_user = "pgmux_auth"\n'
                                  b'auth_query = "SELECT usename, passwd FROM pg_shadow WHERE usename = $1"\n'
                                  b'auth_cache_ttl = 30\n'
                                  b'[databases.app]\nprimary = "127.0.0.1:5432"\n'
                                  b'[users.pgmux_auth]\npassword = "secret"\n'
                                  b'[[hba]]\ndatabase = "app"\nuser = ["bob", "eve"]\nmethod = "reject"\n'
                                  b'[[hba]]\naddress = ["10.1.0.0/16", "fd00::/8", "192.168.1.7"]\n'
                                  b'method = "trust"\n[[hba]]\naddress = "::1/128"\nmethod = "cert"\n'
                                  b'[[hba]]\nmethod = "md5"\n')
    out["bad_syntax.toml"] = b'[pgmux\nlisten = \n'
    # Regression: signed overflow in parse_lag (ConfigLoaderTest.ReplicaLagSizeOverflow).
    out["regression_lag_overflow.toml"] = (b'[databases.app]\nprimary = "h:1"\n'
                                           b'max_replica_lag = "10000000000GB"\n')
    return out


def query_scan():
    sqls = {
        "select_literals": "SELECT * FROM t WHERE a IN (1, 2.5, -3e4, 0x1F) AND b = 'x''y' AND c = E'\\n\\'' /* c */ -- end\n",
        "values": "INSERT INTO t VALUES (1,'a'),(2,'b') RETURNING id",
        "dollar": "SELECT $$ a ' b $$, $tag$ $$ $tag$, $1, U&'d\\0061t', B'101', X'1F', N'n'",
        "hint": "/* pgmux:primary */ SELECT 1; /* pgmux:replica */",
        "set": "SET search_path TO public, app; SET LOCAL work_mem = '64MB'; SET SESSION timezone = 'UTC'",
        "reset": "RESET ALL; RESET search_path; DISCARD ALL; DISCARD TEMP",
        "deallocate": "DEALLOCATE PREPARE ALL; DEALLOCATE s1",
        "prepare": "PREPARE s1 (int, text) AS SELECT $1, $2; EXECUTE s1 (1, 'x')",
        "pins": "LISTEN chan; SELECT pg_advisory_lock(1); CREATE TEMP TABLE x (a int); "
                "DECLARE c CURSOR WITH HOLD FOR SELECT 1; SELECT set_config('a', 'b', false)",
        "select_into": "SELECT * INTO TEMP t2 FROM t",
        "copy_from": "COPY t (a, b) FROM STDIN WITH (FORMAT csv)",
        "explain": "EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1 WHERE id = 2",
        "cte": "WITH d AS (DELETE FROM t WHERE a < 10 RETURNING *) SELECT count(*) FROM d",
        "unterminated": "SELECT 'abc /* \"x",
        "nested_comment": "/* a /* b */ c */ SELECT \"Quoted \"\"id\"\"\", U&\"d\\0061t\" FROM s.t[1:2]",
    }
    return {k: v.encode() for k, v in sqls.items()}


REPLY_TYPES = "123tTnDCIsZENASGHdcWVK"  # kReplyTypes in replies.cpp


def replies():
    """Programs for fuzz_replies (see replies.cpp): one op byte, then its arguments."""
    def expect(reply, statement=0):
        return bytes([reply, statement])

    def reply(t, arg=0):
        return bytes([11, REPLY_TYPES.index(t)]) + (bytes([arg]) if t == "C" else b"")

    parse, bind, close, describe, execute, sync, query = range(7)
    return {
        "extended": expect(parse, 1) + expect(bind, 1) + expect(describe) + expect(execute) + expect(sync)
        + bytes([15, 2]) + reply("1") + reply("2") + reply("T") + reply("D") + reply("C", 1) + reply("Z"),
        "simple_query": bytes([15, 1]) + expect(query) + reply("T") + reply("D") + reply("C", 1)
        + reply("N") + reply("C") + reply("Z"),
        "error_skips_to_sync": bytes([8, 3]) + expect(bind, 3) + expect(execute) + expect(sync)
        + expect(query) + reply("E") + reply("Z") + reply("I") + reply("Z"),
        "hidden_settings": bytes([7, 8 | 64 | query, 0]) + bytes([9]) + expect(query) + reply("S")
        + reply("C") + reply("Z") + reply("C") + reply("Z"),
        "synthetic": expect(parse) + bytes([10, 1]) + expect(sync) + reply("1") + bytes([12])
        + reply("Z") + bytes([14]) + bytes([10, 1]),
        "copy": expect(query) + reply("G") + reply("C") + reply("Z") + bytes([13]),
    }


def dict_entry(token):
    """A libFuzzer dictionary line: only \\, \" and \\xNN escapes exist there."""
    out = "".join("\\x%02X" % ord(c) if ord(c) < 32 or ord(c) > 126
                  else "\\" + c if c in '\\"' else c for c in token)
    return '"' + out + '"'


def dictionaries():
    loader = (ROOT / "pooler" / "config" / "config_loader.cpp").read_text()
    keys = sorted(set(re.findall(r'\("([a-z_]+)"', loader)) | set(re.findall(r'\{"([a-z_-]+)",', loader)))
    config_tokens = keys + [
        "[pgmux]", "[databases.app]", "[users.app]", "[index_advice]", " = ", '"', '"""', "'", "[", "]",
        "{", "}", ",", "\n", "#", "true", "false", "inf", "nan", "1e308", "-1", "0x7fffffff",
        "9223372036854775807", "2147483648", "B", "kB", "KB", "MB", "GB", "ms", "s", "127.0.0.1:5432",
        "[::1]:6432", "/var/run/postgresql:5432", "md5", "SCRAM-SHA-256$4096:", "scram-sha-256",
        "1979-05-27T07:32:00Z"]
    sql_tokens = [
        "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "CREATE", "ALTER", "DROP", "TRUNCATE", "GRANT",
        "REVOKE", "COPY", "FROM", "SET", "RESET", "ALL", "DISCARD", "DEALLOCATE", "PREPARE", "EXECUTE",
        "LISTEN", "UNLISTEN", "DECLARE", "CURSOR", "WITH", "HOLD", "TEMP", "TEMPORARY", "TABLE", "INTO",
        "CLOSE", "EXPLAIN", "ANALYZE", "LOCAL", "SESSION", "TO", "pg_advisory_lock",
        "pg_advisory_unlock_all", "set_config", "IN", "VALUES", "'", "''", "E'", "U&'", "B'", "X'", "N'",
        "$$", "$tag$", "$1", "/*", "*/", "--", "\n", ";", "(", ")", ",", '"', 'U&"', "pgmux:primary",
        "pgmux:replica", "/* pgmux:primary */", "0x1F", "1.5e-3", ".5", "::"]
    return {
        "config_loader": ("config keys, values, units, TOML syntax", config_tokens),
        "query_scan": ("keywords, literal and comment delimiters", sql_tokens),
    }


def main():
    targets = {
        "frontend_decoder": frontend(),
        "backend_decoder": backend(),
        "startup": startup_corpus(),
        "scram": scram(),
        "config_loader": config(),
        "query_scan": query_scan(),
        "replies": replies(),
    }
    for target, seeds in targets.items():
        d = HERE / "corpus" / target
        d.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (d / name).write_bytes(data)
    for target, (what, tokens) in dictionaries().items():
        lines = ["# libFuzzer dictionary for fuzz_%s: %s. Written by make_corpus.py." % (target, what)]
        lines += [dict_entry(t) for t in tokens]
        (HERE / ("%s.dict" % target)).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
