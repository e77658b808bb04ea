#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""SSE stream holder for bench/sse-max (not meant to be run by hand).

Opens many real SSE streams (JSON-RPC tasks/resubscribe over HTTPS, through
nginx) from one asyncio process and holds them open.  Commands, one a line
on stdin; each answers one JSON line on stdout:

    open N     open streams until N are open (or the attempts fail): each
               must answer HTTP 200 text/event-stream and a first event
               whose result is the subscribed task; answers
               {"cmd":"open","want":N,"open":..,"confirmed":..,"failed":..,
                "errors":{kind:count},"samples":[..],"elapsed_s":..}
    status     {"cmd":"status","open":..,"closed_by_peer":..,
                "beaten":..(open streams with a heartbeat or event since the
                last open),"events":..,"heartbeats":..,"closed_samples":[..]}
    quit       closes every stream and exits

Python standard library only (Debian: python3).
"""

import argparse
import asyncio
import errno
import json
import ssl
import sys
import time


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--token-file", required=True)
    p.add_argument("--tasks", required=True, help="comma-separated task ids")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds for connect + TLS + first event, per stream")
    return p.parse_args()


class Holder:
    def __init__(self, a):
        self.a = a
        self.ctx = ssl.create_default_context(cafile=a.ca)
        with open(a.token_file, encoding="ascii") as f:
            self.token = f.read().strip()
        self.tasks = [t for t in a.tasks.split(",") if t]
        self.sem = asyncio.Semaphore(a.concurrency)
        self.streams = {}        # n -> [writer, last_activity]
        self.seq = 0
        self.closed_by_peer = 0
        self.closed_samples = []
        self.events = 0
        self.heartbeats = 0
        self.mark = time.monotonic()
        self.readers = set()

    def request(self, n, task):
        body = json.dumps({"jsonrpc": "2.0", "id": n,
                           "method": "tasks/resubscribe",
                           "params": {"id": task}}).encode()
        head = (f"POST {self.a.path} HTTP/1.1\r\n"
                f"Host: {self.a.host}:{self.a.port}\r\n"
                f"Authorization: Bearer {self.token}\r\n"
                "Content-Type: application/json\r\n"
                "Accept: text/event-stream\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        return head + body

    @staticmethod
    def kind_of(exc):
        if isinstance(exc, asyncio.TimeoutError):
            return "timeout"
        if isinstance(exc, asyncio.IncompleteReadError):
            return "eof"
        if isinstance(exc, ssl.SSLError):
            return "tls_" + (exc.reason or "error").lower()
        if isinstance(exc, ConnectionRefusedError):
            return "connect_refused"
        if isinstance(exc, ConnectionResetError):
            return "reset"
        if isinstance(exc, OSError) and exc.errno:
            name = errno.errorcode.get(exc.errno, str(exc.errno))
            return ("client_" if exc.errno in (errno.EMFILE, errno.ENFILE)
                    else "os_") + name.lower()
        return type(exc).__name__

    async def read_chunk(self, r):
        """One chunk of a chunked body; b"" at the last chunk."""
        line = await r.readuntil(b"\r\n")
        size = int(line.split(b";")[0].strip(), 16)
        data = await r.readexactly(size + 2) if size else b""
        if size == 0:
            await r.readuntil(b"\r\n")
        return data[:-2] if size else b""

    async def open_one(self, n, task):
        """Returns (reader, writer, chunked, buffer) or raises/returns kind."""
        r, w = await asyncio.open_connection(
            self.a.host, self.a.port, ssl=self.ctx,
            server_hostname=self.a.host, limit=1 << 16)
        try:
            w.write(self.request(n, task))
            await w.drain()
            head = await r.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = lines[0].split(" ")
            code = status[1] if len(status) > 1 else "?"
            hdrs = {}
            for ln in lines[1:]:
                if ":" in ln:
                    k, v = ln.split(":", 1)
                    hdrs[k.strip().lower()] = v.strip()
            if code != "200":
                raise Failure("http_" + code, lines[0])
            if not hdrs.get("content-type", "").startswith("text/event-stream"):
                raise Failure("not_event_stream", hdrs.get("content-type", ""))
            chunked = "chunked" in hdrs.get("transfer-encoding", "").lower()
            buf = b""
            while b"\n\n" not in buf:
                data = await (self.read_chunk(r) if chunked else r.read(4096))
                if not data:
                    raise Failure("eof_before_event", buf[:200].decode("latin-1"))
                buf += data.replace(b"\r\n", b"\n")
            ev, buf = buf.split(b"\n\n", 1)
            payload = None
            for ln in ev.split(b"\n"):
                if ln.startswith(b"data:"):
                    payload = ln[5:].strip()
            if payload is None:
                raise Failure("no_data_in_first_event", ev[:200].decode("latin-1"))
            msg = json.loads(payload)
            if "error" in msg:
                err = msg["error"]
                raise Failure("rpc_error_%s" % err.get("code"),
                              err.get("message", ""))
            res = msg.get("result") or {}
            t = res.get("task", res)
            if msg.get("id") != n or t.get("id") != task:
                raise Failure("wrong_first_event", payload[:200].decode("latin-1"))
            state = (t.get("status") or {}).get("state", "")
            if state not in ("submitted", "working", "TASK_STATE_SUBMITTED",
                             "TASK_STATE_WORKING"):
                raise Failure("task_not_running", state)
            return r, w, chunked, buf
        except BaseException:
            w.close()
            raise

    async def hold(self, n, r, w, chunked, buf):
        why = "eof"
        try:
            while True:
                data = await (self.read_chunk(r) if chunked else r.read(4096))
                if not data:
                    break
                self.streams[n][1] = time.monotonic()
                buf += data.replace(b"\r\n", b"\n")
                while b"\n\n" in buf:
                    ev, buf = buf.split(b"\n\n", 1)
                    if ev.startswith(b":"):
                        self.heartbeats += 1
                    else:
                        self.events += 1
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - any read error ends the stream
            why = self.kind_of(e)
        self.streams.pop(n, None)
        self.closed_by_peer += 1
        if len(self.closed_samples) < 5:
            self.closed_samples.append(f"stream {n}: {why}")
        w.close()

    async def attempt(self, n, task, res):
        async with self.sem:
            try:
                r, w, chunked, buf = await asyncio.wait_for(
                    self.open_one(n, task), self.a.timeout)
            except Failure as f:
                res["errors"][f.kind] = res["errors"].get(f.kind, 0) + 1
                if len(res["samples"]) < 5:
                    res["samples"].append(f"{f.kind}: {f.detail}"[:300])
                return
            except Exception as e:  # noqa: BLE001
                k = self.kind_of(e)
                res["errors"][k] = res["errors"].get(k, 0) + 1
                if len(res["samples"]) < 5:
                    res["samples"].append(f"{k}: {e!r}"[:300])
                return
        res["confirmed"] += 1
        self.streams[n] = [w, time.monotonic()]
        t = asyncio.ensure_future(self.hold(n, r, w, chunked, buf))
        self.readers.add(t)
        t.add_done_callback(self.readers.discard)

    async def cmd_open(self, want):
        t0 = time.monotonic()
        res = {"cmd": "open", "want": want, "confirmed": 0, "errors": {},
               "samples": []}
        jobs = []
        for _ in range(max(0, want - len(self.streams))):
            self.seq += 1
            jobs.append(self.attempt(self.seq, self.tasks[self.seq % len(self.tasks)], res))
        await asyncio.gather(*jobs)
        res["failed"] = sum(res["errors"].values())
        res["open"] = len(self.streams)
        res["elapsed_s"] = round(time.monotonic() - t0, 1)
        self.mark = time.monotonic()
        return res

    def cmd_status(self):
        return {"cmd": "status", "open": len(self.streams),
                "closed_by_peer": self.closed_by_peer,
                "beaten": sum(1 for s in self.streams.values() if s[1] > self.mark),
                "events": self.events, "heartbeats": self.heartbeats,
                "closed_samples": self.closed_samples}

    async def run(self):
        loop = asyncio.get_running_loop()
        rd = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(rd), sys.stdin)
        while True:
            line = (await rd.readline()).decode().split()
            if not line or line[0] == "quit":
                break
            if line[0] == "open":
                out = await self.cmd_open(int(line[1]))
            elif line[0] == "status":
                out = self.cmd_status()
            else:
                out = {"cmd": line[0], "error": "unknown command"}
            print(json.dumps(out), flush=True)
        for t in list(self.readers):
            t.cancel()
        for w, _ in self.streams.values():
            w.close()
        print(json.dumps({"cmd": "quit", "closed": len(self.streams)}), flush=True)


class Failure(Exception):
    def __init__(self, kind, detail):
        super().__init__(kind)
        self.kind = kind
        self.detail = detail


def main():
    a = parse_args()
    asyncio.run(Holder(a).run())


if __name__ == "__main__":
    main()
