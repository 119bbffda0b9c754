#!/usr/bin/env python3
"""Soak and fault run of ptyhubd (docs/reliability.md), driven by scripts/soak.sh.

Starts its own daemon (loopback, port 0, a temporary HOME and secret, /bin/sh as the shell), measures it
at rest, then for SECONDS runs everything at once: cycles of connect -> auth -> create -> type -> exit ->
close with many in flight (some cut mid-frame, some ending with SIGKILL of the shell), 20 subscribers of a
fast terminal that never read, 200 half-open TCP connections, 50 clients that never authenticate, and a
normal client whose echo latency is sampled. Then a fault phase lowers the daemon's RLIMIT_NOFILE
(prlimit) until accept() and openpty() fail, checks that it answers with errors and does not spin, and
restores it. Then a disk-full phase (when a private mount namespace can be had): the daemon's repos_root is
a tmpfs of 4 MiB, a clone of a repository that does not fit must complete as failed with git's "No space
left on device", the daemon must go on serving, and a small clone afterwards must succeed. At the end
everything is closed, and the daemon must come back to its resting figures: fds, children and zombies
exactly, RSS within a margin. Prints a before/after table, the echo latency and the
daemon's warnings and errors by kind; exits 1 when something did not come back or the daemon died.

Only the standard library: the WebSocket client is the few lines the test needs (RFC 6455, client side).
"""

import argparse
import asyncio
import base64
import collections
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

SCOPES = "terminal:create terminal:read terminal:write"
GIT_SCOPES = SCOPES + " git:run"
TMPFS_SIZE = "4m"  # the disk-full phase's repos_root


# shell.error events any client of the soak received (docs/protocol.md §5 "Faults").
SHELL_ERRORS = []


class Closed(Exception):
    """The WebSocket was closed (by either side) or the TCP connection ended."""


class WebSocket:
    """A minimal RFC 6455 client over asyncio streams: text frames out (masked), frames in."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer

    @staticmethod
    async def connect(port, token=None, timeout=10):
        """Opens a WebSocket to /ws, with `token` as a Bearer header when given."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        head = (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ptyhub.v1\r\n")
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        writer.write((head + "\r\n").encode())
        try:
            answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            writer.close()
            raise Closed(f"handshake: {e}")
        if not answer.startswith(b"HTTP/1.1 101"):
            writer.close()
            raise Closed("handshake refused: " + answer.split(b"\r\n", 1)[0].decode(errors="replace"))
        return WebSocket(reader, writer)

    @staticmethod
    def frame(payload, opcode=1):
        """A masked client frame."""
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return head + mask + masked

    def send(self, message):
        """Sends one JSON message as a text frame."""
        self.writer.write(self.frame(json.dumps(message).encode()))

    async def recv(self):
        """The next text message, parsed; answers pings; raises Closed at a close frame or EOF."""
        while True:
            try:
                b0, b1 = await self.reader.readexactly(2)
                n = b1 & 0x7F
                if n == 126:
                    n = struct.unpack("!H", await self.reader.readexactly(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
                payload = await self.reader.readexactly(n)
            except (asyncio.IncompleteReadError, ConnectionError) as e:
                raise Closed(str(e))
            opcode = b0 & 0x0F
            if opcode == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                raise Closed(f"close {code}")
            if opcode == 9:
                self.writer.write(self.frame(payload, 10))
                continue
            if opcode in (1, 2):
                message = json.loads(payload)
                if isinstance(message, dict) and message.get("type") == "shell.error":
                    SHELL_ERRORS.append(message.get("data"))  # a fault of a running terminal: none is expected
                return message

    async def until(self, predicate, timeout):
        """Reads until a message satisfies `predicate`; returns it. Raises TimeoutError or Closed."""
        async def loop():
            while True:
                message = await self.recv()
                if predicate(message):
                    return message
        return await asyncio.wait_for(loop(), timeout)

    def abort(self):
        """Drops the TCP connection without a close frame."""
        transport = self.writer.transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        transport.abort()

    async def close(self):
        """A close frame, then the connection ends."""
        try:
            self.writer.write(self.frame(struct.pack("!H", 1000), 8))
            await asyncio.wait_for(self.writer.drain(), 2)
        except (ConnectionError, asyncio.TimeoutError):
            pass
        self.writer.close()


# ---- the daemon and what /proc says about it ----

def children_of(pid):
    """Pids whose parent is `pid`, with their state letter."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out[int(entry)] = fields[0]
    return out


def measure(pid):
    """RSS (KiB), open fds, children and zombie children of `pid`."""
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    kids = children_of(pid)
    return {"rss_kib": rss, "fds": fds, "children": len(kids), "zombies": sum(1 for s in kids.values() if s == "Z")}


def cpu_seconds(pid):
    """User + system CPU time of `pid` so far."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Daemon:
    """ptyhubd on 127.0.0.1:0 in a temporary directory; its stderr is kept as the log."""

    def __init__(self, binary, work):
        self.binary = binary
        self.work = work
        self.secret = os.path.join(work, "secret")
        with open(self.secret, "w") as f:
            f.write(os.urandom(32).hex())
        os.chmod(self.secret, 0o600)
        self.home = os.path.join(work, "home")
        os.makedirs(self.home)
        for rc in (".bashrc", ".profile", ".bash_profile"):
            open(os.path.join(self.home, rc), "w").close()
        self.log_path = os.path.join(work, "ptyhubd.log")
        self.proc = None
        self.port = None

    def token(self, sub, scopes=SCOPES):
        """A token for `sub` made by `ptyhubd token`."""
        return subprocess.check_output([self.binary, "token", "--sub", sub, "--scope", scopes, "--ttl", "86400",
                                        "--jwt-secret-file", self.secret], text=True).strip()

    def start(self, launcher=None, repos_root=None):
        """Starts the daemon and waits (bounded) for its port in the log. `launcher` is a command that ends by
        exec'ing its arguments (the pid stays the daemon's); `repos_root` enables git there."""
        env = dict(os.environ, HOME=self.home)
        self.log = open(self.log_path, "a")
        command = [self.binary, "--listen", "127.0.0.1:0", "--jwt-secret-file", self.secret, "--shell", "/bin/sh",
                   "--home", self.home, "--log-level", "info", "--exited-retention", "1",
                   "--max-terminals-per-user", "1000"]
        if repos_root:
            command += ["--repos-root", repos_root]
        log_start = self.log.tell()
        self.proc = subprocess.Popen((launcher or []) + command,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with open(self.log_path) as f:
                f.seek(log_start)
                m = re.search(r"listening on 127\.0\.0\.1:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
                return
            if self.proc.poll() is not None:
                raise RuntimeError("ptyhubd exited at start:\n" + open(self.log_path).read())
            time.sleep(0.05)
        raise RuntimeError("ptyhubd did not report its port within 15 s")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM by pid, SIGKILL after 10 s."""
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---- the load ----

class Stats:
    def __init__(self):
        self.counts = collections.Counter()
        self.latencies = []
        self.examples = []  # what failed cycles saw, a few of them


async def authed(port, token, stats):
    """A connection authenticated with the header (half the time) or with an auth message."""
    for attempt in range(5):
        try:
            return await authed_once(port, token)
        except Closed as e:
            if "429" not in str(e) or attempt == 4:
                raise
            stats.counts["handshake shed with 429 (retried)"] += 1
            await asyncio.sleep(0.2 * (attempt + 1))


async def authed_once(port, token):
    """One try of authed()."""
    if random.random() < 0.5:
        ws = await WebSocket.connect(port, token)
        await ws.until(lambda m: m.get("type") == "auth.ok", 10)
    else:
        ws = await WebSocket.connect(port)
        ws.send({"type": "auth", "id": 1, "data": {"token": token}})
        await ws.until(lambda m: m.get("type") == "auth.ok", 10)
    return ws


def printed(line):
    """A predicate over messages: true once the terminal's output has `line` at the end of a line, not as the
    echo of the command that prints it (a prompt may precede it: the command was typed ahead of the prompt)."""
    seen = []
    pattern = re.compile(r"(?<!echo )" + re.escape(line) + r"\r?\n")

    def check(message):
        if message.get("type") != "shell.output":
            return False
        seen.append(message["data"].get("data", ""))
        return pattern.search("".join(seen)) is not None
    check.seen = seen
    return check


async def one_cycle(port, token, stats, n):
    """connect -> auth -> create -> type -> exit -> close; some cut mid-frame, some SIGKILL the shell. A shell
    left running by a failed cycle is killed, so that only the daemon's own leaks show at the end."""
    step = "connect"
    pid = None
    try:
        ws = await authed(port, token, stats)
        step = "create"
        ws.send({"type": "shell.create", "id": n, "data": {"command": ["/bin/sh"], "cols": 80, "rows": 24}})
        created = await ws.until(lambda m: m.get("type") in ("shell.created", "error"), 15)
        if created["type"] == "error":
            stats.counts["create error " + created["data"].get("code", "?")] += 1
            await ws.close()
            return
        terminal = created["data"]["terminal"]
        tid, pid = terminal["id"], terminal["pid"]
        mode = random.random()
        if mode < 0.15:
            # Cut mid-frame: part of a frame, then the TCP connection drops. The terminal goes on: end it.
            frame = WebSocket.frame(json.dumps({"type": "shell.input", "data": {"terminalId": tid, "data": "exit\n"}}).encode())
            ws.writer.write(frame[:random.randint(1, len(frame) - 1)])
            await ws.writer.drain()
            ws.abort()
            stats.counts["cycles cut mid-frame"] += 1
            os.kill(pid, signal.SIGKILL)
            pid = None
            return
        step = "echo"
        ws.send({"type": "shell.input", "data": {"terminalId": tid, "data": f"echo soak-{n}\n"}})
        check = printed(f"soak-{n}")
        try:
            await ws.until(check, 15)
        except asyncio.TimeoutError:
            stats.examples.append(f"no soak-{n} within 15 s; output was {''.join(check.seen)[-120:]!r}")
            raise
        step = "exit"
        if mode < 0.35:
            os.kill(pid, signal.SIGKILL)
            stats.counts["cycles ending with SIGKILL of the shell"] += 1
        else:
            ws.send({"type": "shell.input", "data": {"terminalId": tid, "data": "exit\n"}})
        await ws.until(lambda m: m.get("type") == "shell.exit" and m["data"].get("terminalId") == tid, 15)
        pid = None
        stats.counts["cycles"] += 1
        await ws.close()
    except (Closed, asyncio.TimeoutError, ConnectionError) as e:
        stats.counts[f"cycle failed at {step}: {type(e).__name__} {e}".strip()] += 1
    finally:
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


async def cycler(port, token, stats, stop_at, index):
    """Cycles back to back until `stop_at`."""
    n = index * 1_000_000
    while time.monotonic() < stop_at:
        n += 1
        try:
            await one_cycle(port, token, stats, n)
        except ProcessLookupError:
            stats.counts["cycle: the shell was gone before its SIGKILL"] += 1


async def never_readers(port, token, stats, stop_event):
    """A fast terminal and 20 subscribers that never read; all ended at `stop_event`."""
    owner = await authed(port, token, stats)
    owner.send({"type": "shell.create", "id": 1, "data": {
        "command": ["/bin/sh", "-c", "while :; do echo 0123456789abcdefghijklmnopqrstuvwxyz0123456789; done"],
        "subscribe": False}})
    created = await owner.until(lambda m: m.get("type") == "shell.created", 15)
    tid, pid = created["data"]["terminal"]["id"], created["data"]["terminal"]["pid"]
    await owner.close()
    readers = []
    for _ in range(20):
        ws = await authed(port, token, stats)
        ws.send({"type": "subscribe", "id": 2, "data": {"channel": f"shell:terminal:{tid}"}})
        readers.append(ws)  # never read from again
    stats.counts["never-reading subscribers"] += len(readers)
    await stop_event.wait()
    for ws in readers:
        ws.abort()
    # Ended from a new connection: one left unread for minutes has been closed for not answering pings.
    try:
        owner = await authed(port, token, stats)
        owner.send({"type": "shell.kill", "id": 3, "data": {"terminalId": tid, "signal": "SIGKILL"}})
        await owner.until(lambda m: m.get("type") in ("ack", "error"), 10)
        await owner.close()
    except (Closed, asyncio.TimeoutError, OSError):
        stats.counts["fast terminal not ended by shell.kill (SIGKILLed by pid)"] += 1
        os.kill(pid, signal.SIGKILL)


async def half_open(port, stats, stop_event, count=200):
    """`count` TCP connections that never finish their request head (half of them send part of one), each
    opened again when the daemon closes it (it gives a head 10 s)."""
    # From 127.0.0.2-5, 50 each: the daemon keeps at most 64 unfinished heads per address (it sheds the
    # oldest with a 429), and the other clients, on 127.0.0.1, are not to be shed by these.
    async def one(i):
        while not stop_event.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(f"127.0.0.{2 + i % 4}", 0))
            except OSError:
                stats.counts["half-open connect failed"] += 1
                await asyncio.sleep(0.5)
                continue
            stats.counts["half-open connections opened"] += 1
            if i % 2:
                writer.write(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgr")
            stop = asyncio.ensure_future(stop_event.wait())
            eof = asyncio.ensure_future(reader.read())
            await asyncio.wait([stop, eof], return_when=asyncio.FIRST_COMPLETED)
            if eof.done():
                stats.counts["half-open connections closed by the daemon"] += 1
            else:
                eof.cancel()
            stop.cancel()
            writer.transport.abort()
    await asyncio.gather(*(one(i) for i in range(count)))


async def unauthenticated(port, stats, stop_event, count=50):
    """`count` upgraded connections that never authenticate, opened again whenever the daemon closes one."""
    async def one():
        while not stop_event.is_set():
            try:
                ws = await WebSocket.connect(port)
            except (Closed, OSError, asyncio.TimeoutError):
                stats.counts["unauthenticated connect failed"] += 1
                await asyncio.sleep(0.5)
                continue
            stop = asyncio.ensure_future(stop_event.wait())
            closed = asyncio.ensure_future(ws.until(lambda m: False, 3600))
            await asyncio.wait([stop, closed], return_when=asyncio.FIRST_COMPLETED)
            if closed.done():
                e = closed.exception()
                stats.counts[f"unauthenticated closed by daemon ({e})"] += 1
            else:
                closed.cancel()
            stop.cancel()
            ws.abort()
    await asyncio.gather(*(one() for _ in range(count)))


async def latency_probe(port, token, stats, stop_event):
    """A normal client typing into `cat` every 50 ms; each echo's round trip is a sample."""
    ws = await authed(port, token, stats)
    ws.send({"type": "shell.create", "id": 1, "data": {"command": ["/bin/cat"]}})
    created = await ws.until(lambda m: m.get("type") == "shell.created", 15)
    tid = created["data"]["terminal"]["id"]
    n = 0
    while not stop_event.is_set():
        n += 1
        marker = f"<{n}>"
        started = time.monotonic()
        ws.send({"type": "shell.input", "data": {"terminalId": tid, "data": marker}})
        try:
            await ws.until(lambda m: m.get("type") == "shell.output" and marker in m["data"].get("data", ""), 10)
            stats.latencies.append((time.monotonic() - started) * 1000)
        except asyncio.TimeoutError:
            stats.counts["echo timeouts (>10 s)"] += 1
        await asyncio.sleep(0.05)
    ws.send({"type": "shell.kill", "id": 2, "data": {"terminalId": tid}})
    try:
        await ws.until(lambda m: m.get("type") == "shell.exit", 10)
    except (Closed, asyncio.TimeoutError):
        pass
    await ws.close()


async def storm(port, token, seconds, stats, in_flight):
    """Everything at once for `seconds`."""
    stop_event = asyncio.Event()
    stop_at = time.monotonic() + seconds
    background = [asyncio.ensure_future(never_readers(port, token, stats, stop_event)),
                  asyncio.ensure_future(half_open(port, stats, stop_event)),
                  asyncio.ensure_future(unauthenticated(port, stats, stop_event)),
                  asyncio.ensure_future(latency_probe(port, token, stats, stop_event))]
    await asyncio.gather(*(cycler(port, token, stats, stop_at, i) for i in range(in_flight)))
    stop_event.set()
    for task in background:
        try:
            await asyncio.wait_for(task, 30)
        except Exception as e:  # noqa: BLE001 - reported, then the run goes on to its checks
            stats.counts[f"background task failed: {type(e).__name__} {e}"] += 1


async def fd_exhaustion(daemon, token, stats):
    """Lowers RLIMIT_NOFILE to the fds in use + 4, then connects and creates 8 times: accept() and openpty()
    must fail with clean errors, and the daemon must not spin. Restores the limit and ends what was created."""
    pid = daemon.proc.pid
    soft, hard = subprocess.check_output(["prlimit", "--pid", str(pid), "--nofile", "--raw", "--noheadings",
                                          "--output", "SOFT,HARD"], text=True).split()
    in_use = len(os.listdir(f"/proc/{pid}/fd"))
    log_size = os.path.getsize(daemon.log_path)
    results = collections.Counter()
    sockets, pids = [], []
    subprocess.check_call(["prlimit", "--pid", str(pid), f"--nofile={in_use + 4}:{hard}"])
    try:
        cpu_before, started = cpu_seconds(pid), time.monotonic()
        for _ in range(8):
            try:
                ws = await WebSocket.connect(daemon.port, token, timeout=2)
                sockets.append(ws)
                await ws.until(lambda m: m.get("type") == "auth.ok", 3)
                ws.send({"type": "shell.create", "id": 1, "data": {"command": ["/bin/sh"]}})
                reply = await ws.until(lambda m: m.get("type") in ("shell.created", "error"), 5)
                if reply["type"] == "shell.created":
                    pids.append(reply["data"]["terminal"]["pid"])
                    results["shell.created"] += 1
                else:
                    results[f"error {reply['data']['code']}: {reply['data'].get('message', '')}"] += 1
            except (Closed, asyncio.TimeoutError, OSError) as e:
                results[f"connection: {type(e).__name__} {e}".strip()] += 1
        await asyncio.sleep(2)  # a fixed window to measure CPU use over, not a synchronisation
        cpu = (cpu_seconds(pid) - cpu_before) / (time.monotonic() - started)
    finally:
        subprocess.check_call(["prlimit", "--pid", str(pid), f"--nofile={soft}:{hard}"])
    for ws in sockets:
        ws.abort()
    for child in pids:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    with open(daemon.log_path, errors="replace") as f:
        f.seek(log_size)
        logged = [line.strip() for line in f if re.match(r"\S+ (warn|error)", line)]
    return {"limit": in_use + 4, "cpu": cpu, "results": results, "logged": logged}


# ---- the disk-full phase ----

# Run by the launcher inside a new mount namespace: a small tmpfs on the repos root ($1), the directory of the
# source repositories ($2) bound into it (git takes local sources only from inside repos_root), then exec.
MOUNT_SCRIPT = (f'mount -t tmpfs -o size={TMPFS_SIZE},mode=0755 ptyhub-soak "$1" && mkdir "$1/sources" && '
                'mount --bind "$2" "$1/sources" && shift 2 && exec "$@"')


def namespace_launcher(root, sources):
    """A command that starts its arguments in a private mount namespace with a small tmpfs on `root` (and
    `sources` bound at root/sources), tried with a throwaway `true`; or None and why not."""
    if shutil.which("git") is None:
        return None, "no git"
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return None, "no unshare or mount command"
    tries = []
    if os.geteuid() == 0:
        tries.append(["unshare", "-m", "--propagation", "private"])
    tries.append(["unshare", "-U", "-r", "-m", "--propagation", "private"])  # a user namespace, without root
    reasons = []
    for prefix in tries:
        launcher = prefix + ["sh", "-c", MOUNT_SCRIPT, "ptyhub-soak-mount", root, sources]
        try:
            probe = subprocess.run(launcher + ["true"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                   timeout=10)
        except subprocess.TimeoutExpired:
            reasons.append(f"{' '.join(prefix)}: no answer within 10 s")
            continue
        if probe.returncode == 0:
            return launcher, None
        said = probe.stderr.strip().splitlines() or [f"exit {probe.returncode}"]
        reasons.append(f"{' '.join(prefix)}: {said[-1]}")
    return None, "; ".join(reasons)


def tmpfs_of(pid, root):
    """The file system the daemon `pid` sees at `root`: (type, total bytes), from its mountinfo and statvfs
    through /proc/PID/root."""
    fstype = None
    with open(f"/proc/{pid}/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == root:
                fstype = fields[fields.index("-") + 1]  # the last mount on `root` is the one seen
    st = os.statvfs(f"/proc/{pid}/root{root}")
    return fstype, st.f_blocks * st.f_frsize


def git_env():
    """The environment of the soak's own git commands: no user or system configuration, a fixed identity."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null", GIT_AUTHOR_NAME="soak",
               GIT_AUTHOR_EMAIL="soak@ptyhub.invalid", GIT_COMMITTER_NAME="soak",
               GIT_COMMITTER_EMAIL="soak@ptyhub.invalid", LC_ALL="C")
    return env


def make_repository(path, size):
    """A repository at `path` with one commit of `size` random (incompressible) bytes."""
    env = git_env()
    subprocess.check_call(["git", "-c", "init.defaultBranch=main", "init", "-q", path], env=env)
    with open(os.path.join(path, "data.bin"), "wb") as f:
        f.write(os.urandom(size))
    subprocess.check_call(["git", "-C", path, "add", "data.bin"], env=env)
    subprocess.check_call(["git", "-C", path, "commit", "-q", "-m", f"{size} random bytes"], env=env)


async def git_operation(ws, request_id, repo, url, timeout):
    """Starts a clone of `url` into `repo` and reads (bounded) until its git.operation.completed. Returns
    (the reply, the completed event's data or None, the operation's output as text)."""
    ws.send({"type": "git.operation.start", "id": request_id,
             "data": {"operation": "clone", "repo": repo, "url": url}})
    reply = await ws.until(
        lambda m: m.get("id") == request_id and m.get("type") in ("git.operation.started", "error"), 15)
    if reply["type"] == "error":
        return reply, None, ""
    operation_id, terminal_id = reply["data"]["operationId"], reply["data"]["terminalId"]
    output = []

    def done(message):
        data = message.get("data") or {}
        if message.get("type") == "shell.output" and data.get("terminalId") == terminal_id:
            output.append(data.get("data", ""))
        return message.get("type") == "git.operation.completed" and data.get("operationId") == operation_id
    try:
        completed = await ws.until(done, timeout)
    except asyncio.TimeoutError:
        return reply, None, "".join(output)
    return reply, completed["data"], "".join(output)


async def echo_round_trip(ws, tid, marker, timeout=10):
    """Types `echo marker` into shell `tid` and waits (bounded) for its output; True when it came."""
    ws.send({"type": "shell.input", "data": {"terminalId": tid, "data": f"echo {marker}\n"}})
    try:
        await ws.until(printed(marker), timeout)
        return True
    except asyncio.TimeoutError:
        return False


def leftovers(pid, root):
    """What the daemon sees in `root` besides the sources, and the free bytes there."""
    seen = f"/proc/{pid}/root{root}"
    st = os.statvfs(seen)
    return sorted(e for e in os.listdir(seen) if e != "sources"), st.f_bavail * st.f_frsize


async def disk_full(daemon, root, sources, baseline):
    """The disk-full phase: a clone that does not fit in the tmpfs repos_root, then one that does. Returns what
    it saw; its "failed" lists the defects found."""
    result = {"failed": []}
    try:
        await disk_full_steps(daemon, root, sources, baseline, result)
    except (Closed, asyncio.TimeoutError, OSError) as e:
        result["failed"].append(f"disk-full: {type(e).__name__} {e}".strip())
    return result


async def disk_full_steps(daemon, root, sources, baseline, result):
    """disk_full(), filling `result` as it goes."""
    pid = daemon.proc.pid
    failed = result["failed"]
    make_repository(os.path.join(sources, "big"), 8 * 1024 * 1024)
    make_repository(os.path.join(sources, "small"), 16 * 1024)
    log_size = os.path.getsize(daemon.log_path)
    token = daemon.token("soak-git", GIT_SCOPES)
    ws = await authed(daemon.port, token, Stats())
    # A terminal that is not git's, to see that it is unaffected.
    ws.send({"type": "shell.create", "id": 1, "data": {"command": ["/bin/sh"], "cols": 80, "rows": 24}})
    created = await ws.until(lambda m: m.get("type") in ("shell.created", "error") and m.get("id") == 1, 15)
    if created["type"] == "error":
        failed.append(f"disk-full: shell.create answered {created['data']}")
        await ws.close()
        return
    tid, shell_pid = created["data"]["terminal"]["id"], created["data"]["terminal"]["pid"]
    result["echo_before"] = await echo_round_trip(ws, tid, "before-disk-full")

    reply, completed, output = await git_operation(ws, 2, "big", os.path.join(root, "sources", "big"), 120)
    result["big_reply"], result["big"], result["big_output_tail"] = reply, completed, output[-160:]
    result["big_space_lines"] = [line.strip() for line in re.split(r"[\r\n]+", output) if "space" in line.lower()]
    if reply["type"] == "error":
        failed.append(f"disk-full: the clone was refused: {reply['data']}")
    elif completed is None:
        failed.append("disk-full: no git.operation.completed within 120 s")
    else:
        if completed.get("status") != "failed":
            failed.append(f"disk-full: the clone that does not fit completed as {completed.get('status')}")
        if not result["big_space_lines"]:
            failed.append("disk-full: git's error does not mention the lack of space: "
                          f"{output[-200:]!r}")
        # The reason also reaches whoever follows only shell:terminals: the event's own `error`.
        if "space" not in completed.get("error", "").lower():
            failed.append(f"disk-full: git.operation.completed carries no error naming the lack of space: {completed}")
    if not daemon.alive():
        failed.append("disk-full: the daemon died")
        return

    result["echo_after"] = await echo_round_trip(ws, tid, "after-disk-full")
    if not (result["echo_before"] and result["echo_after"]):
        failed.append("disk-full: the other terminal did not echo")
    ws.send({"type": "shell.input", "data": {"terminalId": tid, "data": "exit\n"}})
    try:
        await ws.until(lambda m: m.get("type") == "shell.exit" and m["data"].get("terminalId") == tid, 10)
    except asyncio.TimeoutError:
        os.kill(shell_pid, signal.SIGKILL)
    await ws.close()  # the connection is not part of the resting figures
    result["after_failure"] = await settle(pid, baseline, 30)

    # The failed clone's leftovers: git removes what it created when it fails; whatever stays is removed
    # here, through the daemon's own view of the tmpfs.
    left, free = leftovers(pid, root)
    result["left"], result["free_after_failure"] = left, free
    for entry in left:
        shutil.rmtree(f"/proc/{pid}/root{root}/{entry}", ignore_errors=True)
    result["free_before_small"] = leftovers(pid, root)[1]

    ws = await authed(daemon.port, token, Stats())
    reply, completed, output = await git_operation(ws, 3, "small", os.path.join(root, "sources", "small"), 120)
    result["small_reply"], result["small"] = reply, completed
    if reply["type"] == "error":
        failed.append(f"disk-full: the small clone after freeing space was refused: {reply['data']}")
    elif completed is None:
        failed.append("disk-full: no git.operation.completed for the small clone within 120 s")
    elif completed.get("status") != "succeeded":
        failed.append(f"disk-full: the small clone after freeing space completed as {completed.get('status')}: "
                      f"{output[-200:]!r}")
    elif not os.path.isfile(f"/proc/{pid}/root{root}/small/data.bin"):
        failed.append("disk-full: the small clone succeeded but its file is missing")
    await ws.close()
    if not daemon.alive():
        failed.append("disk-full: the daemon died")
        return
    result["after"] = await settle(pid, baseline, 30)
    with open(daemon.log_path, errors="replace") as f:
        f.seek(log_size)
        result["logged"] = [line.strip() for line in f if re.match(r"\S+ (warn|error)", line)]


def log_kinds(path):
    """warn/error lines of the daemon's log, by level and message (fields stripped)."""
    kinds = collections.Counter()
    with open(path, errors="replace") as f:
        for line in f:
            m = re.match(r"\S+ (warn|error) (.*)", line.strip())
            if not m:
                continue
            message = re.split(r" [\w.-]+=", m.group(2), maxsplit=1)[0]
            kinds[f"{m.group(1)}: {message}"] += 1
    return kinds


async def settle(pid, baseline, timeout):
    """Waits (bounded) until fds and children are back at `baseline`; returns the last measure."""
    deadline = time.monotonic() + timeout
    while True:
        now = measure(pid)
        if (now["fds"] <= baseline["fds"] and now["children"] <= baseline["children"] and now["zombies"] == 0) \
                or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.2)


async def main_async(args):
    work = tempfile.mkdtemp(prefix="ptyhub-soak-")
    daemon = Daemon(args.bin, work)
    failed = []
    before = after = emfile = disk = None
    disk_how = ""
    storm_seconds = 0.0
    stats = Stats()
    # The disk-full phase needs the daemon in a private mount namespace with a small tmpfs as its repos_root;
    # when none can be had the daemon runs as it would otherwise and the phase is skipped.
    repos_root, sources = os.path.join(work, "repos"), os.path.join(work, "sources")
    os.makedirs(repos_root)
    os.makedirs(sources)
    launcher, disk_skipped = (None, "--no-disk-full") if args.no_disk_full else namespace_launcher(repos_root, sources)
    try:
        try:
            daemon.start(launcher, repos_root if launcher else None)
        except RuntimeError as e:
            if launcher is None:
                raise
            disk_skipped = f"the daemon did not start in a mount namespace: {str(e).strip().splitlines()[-1]}"
            launcher = None
            daemon.start()
        pid = daemon.proc.pid
        if os.path.realpath(f"/proc/{pid}/exe") != os.path.realpath(args.bin):
            raise RuntimeError(f"pid {pid} is {os.path.realpath(f'/proc/{pid}/exe')}, not the daemon")
        if launcher:
            fstype, size = tmpfs_of(pid, repos_root)
            if fstype != "tmpfs" or size > 16 * 1024 * 1024:
                disk_skipped = f"the daemon's {repos_root} is {fstype} of {size} bytes, not a small tmpfs"
            else:
                disk_how = f"{' '.join(launcher[:launcher.index('sh')])}; {fstype} of {size // 1024} KiB"
        token = daemon.token("soak")
        # A warm-up cycle, so that what is allocated once (the loop's pools, the first terminal) is in the baseline.
        for n in range(3):
            await one_cycle(daemon.port, token, Stats(), n)
        await asyncio.sleep(1.5)  # exited_retention is 1 s: the warm-up terminals are removed
        before = await settle(pid, {"fds": 10**9, "children": 0}, 10)
        print(f"soak: ptyhubd pid {pid} on 127.0.0.1:{daemon.port}, {args.seconds} s, {args.in_flight} cycles in flight")
        started = time.monotonic()
        await storm(daemon.port, token, args.seconds, stats, args.in_flight)
        storm_seconds = time.monotonic() - started
        if not daemon.alive():
            failed.append("the daemon died during the storm")
        after = await settle(pid, before, 30) if daemon.alive() else None
        emfile = None
        if daemon.alive() and not args.no_emfile and shutil.which("prlimit"):
            emfile = await fd_exhaustion(daemon, token, stats)
            if not daemon.alive():
                failed.append("the daemon died when out of fds")
            emfile["after"] = await settle(pid, before, 30) if daemon.alive() else None
        if daemon.alive() and disk_skipped is None:
            disk = await disk_full(daemon, repos_root, sources, before)
            failed.extend(disk["failed"])
    finally:
        alive = daemon.alive()
        daemon.stop()
    kinds = log_kinds(daemon.log_path)

    print(f"\nsoak: {stats.counts['cycles']} full cycles in {storm_seconds:.0f} s "
          f"({stats.counts['cycles'] / max(storm_seconds, 1):.1f}/s)")
    for key, value in sorted(stats.counts.items()):
        if key != "cycles":
            print(f"  {key}: {value}")
    for example in stats.examples[:3]:
        print(f"  e.g. {example}")
    if stats.latencies:
        lat = sorted(stats.latencies)
        p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
        print(f"echo latency during the storm ({len(lat)} samples): p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, "
              f"max {lat[-1]:.1f} ms")
    else:
        failed.append("no echo latency sample")
    columns = [("before", before), ("after the storm", after)]
    if emfile:
        columns.append(("after the fd faults", emfile["after"]))
    if disk:
        columns.append(("after the disk-full phase", disk.get("after")))
    print("\n| | " + " | ".join(title for title, _ in columns) + " |\n|---|" + "---|" * len(columns))
    for key in ("rss_kib", "fds", "children", "zombies"):
        print(f"| {key} | " + " | ".join(str(end[key]) if end else "daemon gone" for _, end in columns) + " |")
    if emfile:
        print(f"\nRLIMIT_NOFILE lowered to {emfile['limit']} (fds in use + 4), 8 connect + shell.create tries: "
              f"daemon CPU {emfile['cpu'] * 100:.0f}% meanwhile")
        for kind, count in emfile["results"].most_common():
            print(f"  {count:3d}  {kind}")
        print(f"  logged meanwhile: {len(emfile['logged'])} warn/error lines" +
              "".join(f"\n    {line}" for line in emfile["logged"][:6]))
        if emfile["cpu"] > 0.5:
            failed.append(f"the daemon used {emfile['cpu'] * 100:.0f}% CPU while out of fds (a busy loop?)")
    if disk_skipped is not None:
        print(f"\ndisk-full phase: skipped: {disk_skipped}")
    elif disk:
        print(f"\ndisk-full phase: repos_root in a private mount namespace ({disk_how})")
        if disk.get("big") is not None:
            print("  clone of an 8 MiB repository: " +
                  json.dumps({"type": "git.operation.completed", "data": disk["big"]}))
            print(f"    the end of its shell.output: {disk['big_output_tail']!r}")
        if "echo_after" in disk:
            print(f"  echo in another shell before / after: {'ok' if disk['echo_before'] else 'MISSING'} / "
                  f"{'ok' if disk['echo_after'] else 'MISSING'}; fds {disk['after_failure']['fds']}, children "
                  f"{disk['after_failure']['children']}, zombies {disk['after_failure']['zombies']} after the failure")
        if "left" in disk:
            print(f"  left in repos_root after the failure: {', '.join(disk['left']) or 'nothing'}"
                  f"{' (removed by the soak)' if disk['left'] else ''}; free {disk['free_after_failure'] // 1024} KiB, "
                  f"{disk['free_before_small'] // 1024} KiB before the next clone")
        if disk.get("small") is not None:
            print("  clone of a 16 KiB repository afterwards: " +
                  json.dumps({"type": "git.operation.completed", "data": disk["small"]}))
        if "logged" in disk:
            print(f"  logged meanwhile: {len(disk['logged'])} warn/error lines" +
                  "".join(f"\n    {line}" for line in disk["logged"][:6]))
    print("\ndaemon log, warnings and errors by kind:" + ("" if kinds else " none"))
    for kind, count in kinds.most_common():
        print(f"  {count:6d}  {kind}")

    if not alive:
        failed.append("the daemon was not running at the end")
    if SHELL_ERRORS:
        failed.append(f"{len(SHELL_ERRORS)} shell.error events (faults of running terminals), first: {SHELL_ERRORS[0]}")
    print(f"shell.error events received: {len(SHELL_ERRORS)}")
    ends = [after] + ([emfile["after"]] if emfile else [])
    if disk:
        ends += [disk.get("after_failure"), disk.get("after")]
    for end in ends:
        if not end:
            continue
        if end["fds"] > before["fds"]:
            failed.append(f"fds {before['fds']} -> {end['fds']}")
        if end["children"] > before["children"]:
            failed.append(f"children {before['children']} -> {end['children']}")
        if end["zombies"]:
            failed.append(f"{end['zombies']} zombies")
        if end["rss_kib"] > before["rss_kib"] * 1.5 + 32 * 1024:
            failed.append(f"RSS {before['rss_kib']} KiB -> {end['rss_kib']} KiB")
    if stats.counts["cycles"] == 0:
        failed.append("no cycle completed")
    if failed:
        print("\nsoak: FAILED: " + "; ".join(failed) + f" (log: {daemon.log_path})")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print("\nsoak: passed")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", required=True)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--no-emfile", action="store_true", help="skip the RLIMIT_NOFILE phase")
    parser.add_argument("--no-disk-full", action="store_true",
                        help="skip the disk-full phase (and start the daemon without a mount namespace)")
    args = parser.parse_args()
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
