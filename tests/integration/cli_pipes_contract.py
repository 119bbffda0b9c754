#!/usr/bin/python3
"""`ptyhub run` over stdio pipes against a stand-in for the daemon.

The daemon's side of stdio pipes (shell.create {stdio: "pipes"}, shell.input {eof: true}) is being added
to ptyhubd; until it lands, cli_pipes_test.cpp skips. This test checks the client's side of that contract
now: a minimal WebSocket server (python3-websockets) that implements exactly those messages — the child
runs with stdin a pipe and stdout+stderr one pipe, output goes out as base64 shell.output with offsets,
{eof: true} closes the child's stdin, shell.exit carries its status — and real `ptyhub run` processes
fed through real pipes. Exits 77 (skip) when python3-websockets is missing.

usage: cli_pipes_contract.py PTYHUB_BINARY
"""
import asyncio
import base64
import json
import os
import sys
import tempfile

try:
    import websockets
except ImportError:
    print("python3-websockets is not installed: skipped")
    sys.exit(77)

TERMINAL = "PipesTerminal000000000"
CHANNEL = "shell:terminal:" + TERMINAL


async def serve_client(ws, path=None):
    """One client: auth.ok, then shell.create / subscribe / shell.input / shell.dismiss."""
    await ws.send(json.dumps({"type": "auth.ok", "data": {"user": "alice", "scopes": []}}))
    proc = None
    offset = 0
    saw = {"eof": False}

    async def pump():
        nonlocal offset
        while True:
            chunk = await proc.stdout.read(65536)
            if not chunk:
                break
            await ws.send(json.dumps({"type": "shell.output", "channel": CHANNEL, "data": {
                "terminalId": TERMINAL, "offset": offset, "next": offset + len(chunk),
                "data": base64.b64encode(chunk).decode(), "encoding": "base64"}}))
            offset += len(chunk)
        code = await proc.wait()
        await ws.send(json.dumps({"type": "shell.exit", "channel": CHANNEL, "data": {
            "terminalId": TERMINAL, "exitCode": code, "signal": None, "outputBytes": offset}}))

    async for raw in ws:
        message = json.loads(raw)
        kind, data, rid = message["type"], message.get("data", {}), message.get("id")
        if kind == "shell.create":
            if data.get("stdio") != "pipes":
                raise AssertionError("shell.create without stdio pipes: %r" % data)
            proc = await asyncio.create_subprocess_exec(
                *data["command"], stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT)
            terminal = {"id": TERMINAL, "channel": CHANNEL, "kind": "shell", "stdio": "pipes"}
            await ws.send(json.dumps({"type": "shell.created", "id": rid, "data": {"terminal": terminal}}))
        elif kind == "subscribe":
            if data.get("encoding") != "base64" or data.get("channel") != CHANNEL:
                raise AssertionError("subscribe: %r" % data)
            await ws.send(json.dumps({"type": "subscribed", "id": rid, "data": {"channel": CHANNEL}}))
            asyncio.ensure_future(pump())
        elif kind == "shell.input":
            if saw["eof"]:
                raise AssertionError("input after eof")
            if data.get("eof") is True:
                saw["eof"] = True
                proc.stdin.close()
            else:
                if data.get("encoding") != "base64":
                    raise AssertionError("input not base64: %r" % data)
                proc.stdin.write(base64.b64decode(data["data"], validate=True))
                await proc.stdin.drain()
            await ws.send(json.dumps({"type": "ack", "id": rid}))
        elif kind == "shell.dismiss":
            await ws.send(json.dumps({"type": "shell.dismissed", "id": rid, "data": {"terminalId": TERMINAL}}))


async def run(command, env):
    """Runs a shell command line; returns (status, stdout bytes, stderr text)."""
    proc = await asyncio.create_subprocess_shell(command, stdout=asyncio.subprocess.PIPE,
                                                 stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode, out, err.decode(errors="replace")


async def main(binary):
    failures = []

    def check(condition, what):
        if not condition:
            failures.append(what)

    async with websockets.serve(serve_client, "127.0.0.1", 0, subprotocols=["ptyhub.v1"], max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        env = dict(os.environ, PTYHUB_URL="ws://127.0.0.1:%d/ws" % port, PTYHUB_TOKEN="stand-in")
        cli = "'" + binary.replace("'", "'\\''") + "'"

        status, out, err = await run("seq 100000 | %s run -- wc -l" % cli, env)
        check(status == 0 and out == b"100000\n", "seq 100000 | run -- wc -l: %r %r %s" % (status, out[:80], err))

        status, out, err = await run("echo hi | %s run -- sh -c 'cat; exit 7'" % cli, env)
        check(status == 7 and out == b"hi\n", "exit status 7: %r %r %s" % (status, out, err))

        with tempfile.TemporaryDirectory() as tmp:
            data = os.urandom(1 << 20)
            source = os.path.join(tmp, "in")
            with open(source, "wb") as f:
                f.write(data)
            for how, line in (("through a pipe", "cat %s | %s run -- cat" % (source, cli)),
                              ("from a file", "%s run -- cat < %s" % (cli, source))):
                status, out, err = await run(line, env)
                check(status == 0 and out == data, "1 MiB %s: status %r, %d bytes back, same=%s %s"
                      % (how, status, len(out), out == data, err))

    for failure in failures:
        print("FAILED:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1])))
