"""Process management: start services as an unprivileged user, stop them by PID,
and read CPU / memory figures from /proc."""

from __future__ import annotations

import ctypes
import os
import pwd
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

CLK_TCK = os.sysconf("SC_CLK_TCK")
_PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover
    _libc = None


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class RunAs:
    """Who the services run as: the current user, or (when we are root) an
    unprivileged account such as 'postgres'."""

    name: str
    uid: int
    gid: int
    switch: bool  # True when we must setuid in the child

    @classmethod
    def resolve(cls, wanted: str) -> "RunAs":
        if os.geteuid() != 0:
            pw = pwd.getpwuid(os.geteuid())
            return cls(pw.pw_name, pw.pw_uid, pw.pw_gid, False)
        try:
            pw = pwd.getpwnam(wanted)
        except KeyError:
            raise SystemExit(
                f"bench: running as root, but user {wanted!r} does not exist; create it "
                f"(the postgresql package does) or pass --run-as USER"
            )
        return cls(pw.pw_name, pw.pw_uid, pw.pw_gid, True)

    def popen_kwargs(self) -> dict:
        if not self.switch:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def _make_preexec(deathsig: int | None):
    parent = os.getpid()

    def _pre():
        # Die with the harness even if it is SIGKILLed (PR_SET_PDEATHSIG is set
        # after the uid switch, which would otherwise clear it).
        if deathsig and _libc is not None:
            _libc.prctl(_PR_SET_PDEATHSIG, int(deathsig), 0, 0, 0)
            if os.getppid() != parent:
                os.kill(os.getpid(), int(deathsig))

    return _pre


class Registry:
    """Everything the harness started and must stop: services and clients."""

    def __init__(self) -> None:
        self.items: list["Proc"] = []

    def add(self, p: "Proc") -> None:
        self.items.append(p)

    def remove(self, p: "Proc") -> None:
        if p in self.items:
            self.items.remove(p)

    def stop_all(self) -> None:
        # Clients first, then poolers, then the servers (replica before primary).
        for p in reversed(list(self.items)):
            try:
                p.stop()
            except Exception as e:  # keep going: stop everything we can
                log(f"warning: stopping {p.name} (pid {p.pid}) failed: {e}")


REGISTRY = Registry()


@dataclass
class Proc:
    """A process we started.  stop() signals it BY PID and escalates."""

    name: str
    argv: list[str]
    log_path: str | None = None
    run_as: RunAs | None = None
    env: dict | None = None
    cwd: str | None = None
    stop_signal: int = signal.SIGTERM
    escalate: list[int] = field(default_factory=lambda: [signal.SIGKILL])
    stop_timeout: float = 20.0
    deathsig: int | None = signal.SIGTERM
    stdout_pipe: bool = False
    stdout_path: str | None = None  # stdout to its own file (stderr goes to log_path)
    popen: subprocess.Popen | None = None
    _logf: object = None
    _outf: object = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def start(self) -> "Proc":
        kwargs = dict(self.run_as.popen_kwargs()) if self.run_as else {}
        if self.log_path:
            self._logf = open(self.log_path, "ab", buffering=0)
            if self.run_as and self.run_as.switch:
                os.chown(self.log_path, self.run_as.uid, self.run_as.gid)
        self._outf = open(self.stdout_path, "wb") if self.stdout_path else None
        if self.stdout_pipe:
            stdout = subprocess.PIPE
        else:
            stdout = self._outf or self._logf or subprocess.DEVNULL
        stderr = self._logf or subprocess.DEVNULL
        self.popen = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,  # Ctrl-C reaches only the harness, which stops us in order
            preexec_fn=_make_preexec(self.deathsig),
            **kwargs,
        )
        REGISTRY.add(self)
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self) -> int | None:
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            sigs = [self.stop_signal] + list(self.escalate)
            for i, sig in enumerate(sigs):
                try:
                    os.kill(self.popen.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.popen.wait(timeout=self.stop_timeout if i == 0 else 10)
                    break
                except subprocess.TimeoutExpired:
                    log(f"{self.name} (pid {self.popen.pid}) did not exit after "
                        f"{signal.Signals(sig).name}; escalating")
        rc = self.popen.poll()
        if self.popen.stdout:
            try:
                self.popen.stdout.close()
            except Exception:
                pass
        self.close_files()
        REGISTRY.remove(self)
        return rc

    def close_files(self) -> None:
        for attr in ("_logf", "_outf"):
            f = getattr(self, attr, None)
            if f:
                f.close()
                setattr(self, attr, None)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for a process that exits by itself; unregister it."""
        rc = self.popen.wait(timeout=timeout)
        self.close_files()
        REGISTRY.remove(self)
        return rc

    def log_tail(self, n: int = 20) -> str:
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            data = f.read()[-8000:]
        return "\n".join(data.decode(errors="replace").splitlines()[-n:])


# --------------------------------------------------------------------- /proc

def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                s = f.read().decode(errors="replace")
        except OSError:
            continue
        rest = s[s.rfind(")") + 2:].split()
        kids.setdefault(int(rest[1]), []).append(int(d))
    return kids


def proc_tree(pid: int) -> list[int]:
    """pid and all its descendants (a pooler might fork workers)."""
    kids = _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_ticks(pid: int) -> int:
    """utime+stime of one process (all its threads), in clock ticks."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        s = f.read().decode(errors="replace")
    rest = s[s.rfind(")") + 2:].split()
    # rest[0] is field 3 (state); utime is field 14, stime field 15.
    return int(rest[11]) + int(rest[12])


def tree_cpu_seconds(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            total += cpu_ticks(p)
        except (OSError, IndexError, ValueError):
            pass
    return total / CLK_TCK


def status_kib(pid: int, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def tree_status_kib(pids: list[int], key: str) -> int | None:
    vals = [status_kib(p, key) for p in pids]
    vals = [v for v in vals if v is not None]
    return sum(vals) if vals else None


def reset_peak_rss(pids: list[int]) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: echo 5 > clear_refs)."""
    ok = True
    for p in pids:
        try:
            with open(f"/proc/{p}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            ok = False
    return ok


def loadavg() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def _socket_inodes(pids: list[int]) -> set[int]:
    inodes: set[int] = set()
    for p in pids:
        try:
            fds = os.listdir(f"/proc/{p}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                t = os.readlink(f"/proc/{p}/fd/{fd}")
            except OSError:
                continue
            if t.startswith("socket:["):
                inodes.add(int(t[8:-1]))
    return inodes


def tcp_peers(pids: list[int], remote_ports: set[int]) -> list[int]:
    """Local ports of the ESTABLISHED TCP connections that these processes
    hold to any of remote_ports (i.e. a pooler's server connections)."""
    if not pids:
        return []
    inodes = _socket_inodes(pids)
    local_ports = []
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pids[0]}/net/{table}") as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if len(parts) < 10 or parts[3] != "01":  # 01 = ESTABLISHED
                        continue
                    rport = int(parts[2].rsplit(":", 1)[1], 16)
                    if rport in remote_ports and int(parts[9]) in inodes:
                        local_ports.append(int(parts[1].rsplit(":", 1)[1], 16))
        except OSError:
            continue
    return local_ports


def max_open_files(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
    except (OSError, ValueError):
        return None
    return None
