# SPDX-License-Identifier: MIT
# The load, the fault injection, the sampling and the checks of bench/soak.
# Run by bench/soak (which starts the harness and passes everything in the
# environment); python3 standard library only.  See bench/README.md,
# "Running soak".
import collections
import http.client
import json
import os
import random
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

E = os.environ
DURATION = int(E["DURATION"])
SSE = int(E["SSE"])
PIPELINES = int(E["PIPELINES"])
RATE = float(E["RATE"])
LOAD_THREADS = int(E["LOAD_THREADS"])
SAMPLE_S = int(E["SAMPLE_S"])
WARM_S = int(E["WARM_S"])
DRAIN_S = int(E["DRAIN_S"])
FAULT_EVERY_S = int(E["FAULT_EVERY_S"])
SSH_DROP_EVERY_S = int(E["SSH_DROP_EVERY_S"])
SSE_TASK_MIN_S = int(E["SSE_TASK_MIN_S"])
SSE_TASK_MAX_S = int(E["SSE_TASK_MAX_S"])
PIPE_LIMIT_S = int(E["PIPE_LIMIT_S"])
ITERATIONS = int(E["ITERATIONS"])
N_VIEWS = int(E["N_VIEWS"])
RSS_PCT = float(E["RSS_PCT"])
RSS_SLACK_KIB = int(E["RSS_SLACK_KIB"])
FD_SLACK = int(E["FD_SLACK"])
THREAD_SLACK = int(E["THREAD_SLACK"])
AGENT_PID = int(E["AGENT_PID"])
WORK = E["WORK"]
SRCDIR = E["SRCDIR"]
POD_ROOT = E["POD_ROOT"]
POD_DIR = os.path.join(E["HARNESS_DIR"], "pod")
GPU = "NVIDIA GeForce RTX 4090"
TERMINAL = ("completed", "failed", "canceled", "rejected")
SOAK_SCOPES = "instag:run pods:write pods:read tasks:read tasks:write diag:run"
INSTANT_MS = 20         # the blocking send's diag.timer: one step of 20 ms
SSE_INTERVAL_MS = 2000  # the streamed tasks' progress interval
# nginx closes a keep-alive connection idle for keepalive_timeout (its
# default, 75 s; the harness sets none): a client must not send on one idle
# that long, or its request meets the close (SSLEOFError).  Reopen instead.
IDLE_S = 50

au = urllib.parse.urlsplit(E["AGENT_URL"])
BASE = au.path.rstrip("/")
fu = urllib.parse.urlsplit(E["RUNPOD_URL"])
CTX = ssl.create_default_context(cafile=E["AGENT_CA"])
FAKE_HDRS = {"Authorization": "Bearer " + E["RUNPOD_API_KEY"],
             "Content-Type": "application/json"}

threading.stack_size(512 * 1024)


class Fail(Exception):
    pass


# ---- counters ----------------------------------------------------------------
class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.ok = collections.Counter()        # by kind of request
        self.errors = collections.Counter()    # by kind of error
        self.example = {}                      # kind -> first message
        self.sse_open = 0
        self.sse_peak = 0
        self.sse_done = 0
        self.sse_events = 0
        self.pipelines = collections.Counter()  # by end state
        self.faults = collections.Counter()
        self.drops = 0
        self.drop_procs = 0

    def req(self, n=1):
        with self.lock:
            self.requests += n

    def good(self, kind):
        with self.lock:
            self.ok[kind] += 1

    def err(self, kind, msg=""):
        with self.lock:
            self.errors[kind] += 1
            self.example.setdefault(kind, msg[:300])

    def sse(self, delta):
        with self.lock:
            self.sse_open += delta
            self.sse_peak = max(self.sse_peak, self.sse_open)


S = Stats()
load_stop = threading.Event()     # no new work from here on
hard_stop = threading.Event()     # the drain is over: give up
created = set()                   # every task id the soak made
created_lock = threading.Lock()
recent = collections.deque(maxlen=4000)   # ids for GetTask
open_socks = {}                   # SSE thread -> socket, to close at the stop
open_lock = threading.Lock()


def note_task(tid):
    with created_lock:
        created.add(tid)
    recent.append(tid)


# ---- HTTP ------------------------------------------------------------------
class Conn:
    """One keep-alive HTTP(S) connection; every request is counted."""

    def __init__(self, https=True, host=None, port=None, timeout=60):
        self.https = https
        self.host = host or au.hostname
        self.port = port or au.port
        self.timeout = timeout
        self.c = None
        self.last = 0.0

    def open(self):
        if self.c is not None and time.monotonic() - self.last > IDLE_S:
            self.close()
        if self.c is None:
            if self.https:
                self.c = http.client.HTTPSConnection(self.host, self.port, context=CTX,
                                                     timeout=self.timeout)
            else:
                self.c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self.c.connect()
            self.last = time.monotonic()
        return self.c

    def close(self):
        if self.c is not None:
            try:
                self.c.close()
            except OSError:
                pass
            self.c = None

    def req(self, method, path, body=None, headers=None, raw=None, count=True):
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        try:
            c = self.open()
            if count:
                S.req()
            c.request(method, path, body=data, headers=headers or {})
            r = c.getresponse()
            out = r.status, r.read()
            self.last = time.monotonic()
            return out
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise Fail("%s %s: %s" % (method, path, type(e).__name__ + (": %s" % e if str(e) else "")))


def hdrs(token, v1=False):
    h = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    if v1:
        h["A2A-Version"] = "1.0"
    return h


_ids = iter(range(1, 1 << 62))
_ids_lock = threading.Lock()


def next_id():
    with _ids_lock:
        return next(_ids)


def rpc(conn, token, method, params, kind, v1=False):
    """One JSON-RPC call on /a2a; its result, or None after counting the error."""
    body = {"jsonrpc": "2.0", "id": next_id(), "method": method, "params": params}
    try:
        st, data = conn.req("POST", BASE + "/a2a", body, hdrs(token, v1))
    except Fail as e:
        S.err("%s: connection error" % kind, str(e))
        return None
    if st != 200:
        S.err("%s: HTTP %d" % (kind, st), data[:200].decode("utf-8", "replace"))
        return None
    try:
        j = json.loads(data)
    except ValueError:
        S.err("%s: bad JSON" % kind, data[:200].decode("utf-8", "replace"))
        return None
    if "error" in j:
        S.err("%s: JSON-RPC %s" % (kind, (j["error"] or {}).get("code")), json.dumps(j["error"]))
        return None
    return j.get("result")


def op_msg(operation, params, task_id=None):
    m = {"role": "user", "messageId": str(uuid.uuid4()),
         "parts": [{"kind": "data", "data": {"operation": operation, "params": params}}]}
    if task_id:
        m["taskId"] = task_id
    return m


def norm_state(s):
    s = (s or "").lower()
    if s.startswith("task_state_"):
        s = s[len("task_state_"):].replace("_", "-")
    return s


class Envelope(Conn):
    def __init__(self, token):
        super().__init__()
        self.h = hdrs(token)

    def op(self, operation, params):
        st, data = self.req("POST", BASE + "/api/a2a", {
            "type": "task_request", "payload": {"operation": operation, "params": params}}, self.h)
        if st != 200:
            raise Fail("%s: HTTP %d: %s" % (operation, st, data[:300]))
        return json.loads(data)

    def submit(self, operation, params):
        j = self.op(operation, params)
        if j.get("status") == "error" or not j.get("task_id"):
            raise Fail("%s refused: %s" % (operation, json.dumps(j)[:400]))
        return j["task_id"]

    def get(self, tid):
        last = None
        for _ in range(3):      # a dropped keep-alive connection: try again
            try:
                j = self.op("tasks.get", {"task_id": tid})
                res = j.get("result")
                if isinstance(res, dict) and "state" in res:
                    return res
                raise Fail("tasks.get %s: %s" % (tid, json.dumps(j)[:300]))
            except Fail as e:
                last = e
                time.sleep(0.5)
        raise last

    def wait(self, tid, tick, limit):
        t0 = time.monotonic()
        while True:
            res = self.get(tid)
            if res["state"] in TERMINAL or time.monotonic() - t0 >= limit or hard_stop.is_set():
                return res
            time.sleep(tick)

    def run(self, operation, params, limit=300):
        tid = self.submit(operation, params)
        res = self.wait(tid, 0.1, limit)
        if res["state"] != "completed":
            raise Fail("%s %s ended %s: %s" % (operation, tid, res["state"],
                                               json.dumps(res.get("error"))[:600]))
        return res

    def upload(self, name, path):
        with open(path, "rb") as f:
            body = f.read()
        h = dict(self.h, **{"Content-Type": "application/octet-stream"})
        st, data = self.req("PUT", BASE + "/uploads/" + name, headers=h, raw=body)
        if st != 201:
            raise Fail("PUT /uploads/%s: HTTP %d %s" % (name, st, data[:200]))
        return json.loads(data)["upload_id"]


class Fake(Conn):
    def __init__(self):
        super().__init__(False, fu.hostname, fu.port, timeout=30)

    def call(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            try:
                st, data = self.req(method, path, body, headers, count=False)
                return st, data
            except Fail:
                if attempt:
                    raise
        raise Fail("unreachable")

    def live_pods(self):
        st, data = self.call("GET", "/v2/pods", headers=FAKE_HDRS)
        if st != 200:
            raise Fail("GET /v2/pods: HTTP %d" % st)
        j = json.loads(data)
        pods = (j.get("pods") if isinstance(j, dict) else j) or []
        return [p for p in pods if p.get("desiredStatus") != "TERMINATED"], len(pods)


# ---- the agent process ---------------------------------------------------------
def proc_sample():
    out = {}
    try:
        with open("/proc/%d/status" % AGENT_PID) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "Threads"):
                    out[k] = int(v.split()[0])
        out["fds"] = len(os.listdir("/proc/%d/fd" % AGENT_PID))
    except OSError:
        pass
    return out


def agent_alive():
    try:
        os.kill(AGENT_PID, 0)
        return True
    except OSError:
        return False


def metrics(conn):
    """The agent's /metrics as {name{labels}: value} (no request counted)."""
    try:
        st, data = conn.req("GET", BASE + "/metrics", count=False)
    except Fail:
        try:
            st, data = conn.req("GET", BASE + "/metrics", count=False)
        except Fail:
            return {}
    if st != 200:
        return {}
    out = {}
    for line in data.decode("utf-8", "replace").splitlines():
        if not line or line[0] == "#":
            continue
        k, _, v = line.rpartition(" ")
        try:
            out[k] = float(v)
        except ValueError:
            pass
    return out


# ---- prep: a checkout with the licensed placeholders, uploads ----------------
def mint_token(sub):
    r = subprocess.run([E["AGENT_BIN"], "token", "--config", E["AGENT_CONF"], "--sub", sub,
                        "--scope", SOAK_SCOPES, "--ttl", "86400"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    tok = r.stdout.decode().strip().splitlines()[0] if r.stdout.strip() else ""
    if r.returncode != 0 or not tok:
        raise Fail("instag-agent token --sub %s: status %d %s" % (sub, r.returncode, r.stderr.decode()[:200]))
    return tok


def as_user(cmd):
    user = E.get("POD_SSH_USER", "")
    if os.geteuid() == 0 and user and user != "root":
        return ["runuser", "-u", user, "--", "sh", "-c", cmd]
    return ["sh", "-c", cmd]


def place_assets():
    """As tests/integration/check_pipeline.c's place_assets (and bench/pipeline)."""
    mm = os.path.join(SRCDIR, "tests/fake-instag/make-media")
    cmd = ("cd '%s/InsTaG' && M='%s' && "
           "$M bfm data_utils/face_tracking/3DMM/01_MorphableModel.mat && "
           "$M weights data_utils/easyportrait/fpn-fp-512.pth && "
           "for e in deepspeech ave esperanto hubert; do "
           "mkdir -p output/pretrain_$e && "
           "$M weights output/pretrain_$e/chkpnt_ema_face_latest.pth && "
           "$M weights output/pretrain_$e/chkpnt_ema_mouth_latest.pth; done") % (POD_ROOT, mm)
    r = subprocess.run(as_user(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    if r.returncode != 0:
        raise Fail("placing the assets failed: %s" % r.stdout.decode()[-500:])


def prep():
    admin = Envelope(E["AGENT_TOKEN"])
    r = admin.run("runpod.provision_pod", {"gpu_type_ids": [GPU]})
    pod = r["result"]["pod_id"]
    try:
        admin.run("instag.setup_environment", {"pod_id": pod})
        place_assets()
    finally:
        admin.run("runpod.terminate_pod", {"pod_id": pod})
    admin.close()
    token = mint_token("soak")
    env = Envelope(token)
    media = {"video": env.upload("soak_v.mp4", os.path.join(WORK, "v.mp4")),
             "audio": [env.upload("soak_a0.wav", os.path.join(WORK, "a0.wav"))]}
    env.close()
    return token, media


# ---- the load ------------------------------------------------------------------
def discovery(conn, token, n):
    if n % 2 == 0:
        kind = "discovery card"
        try:
            st, data = conn.req("GET", BASE + "/.well-known/agent-card.json")
        except Fail as e:
            return S.err(kind + ": connection error", str(e))
        if st != 200:
            return S.err("%s: HTTP %d" % (kind, st), data[:200].decode("utf-8", "replace"))
        try:
            ok = "name" in json.loads(data)
        except ValueError:
            ok = False
        return S.good(kind) if ok else S.err(kind + ": no card", data[:200].decode("utf-8", "replace"))
    kind = "discovery envelope"
    try:
        st, data = conn.req("POST", BASE + "/api/a2a", {
            "type": "agent_discovery_request", "sender": "soak",
            "payload": {"task_id": "soak-%d" % n}}, hdrs(token))
    except Fail as e:
        return S.err(kind + ": connection error", str(e))
    if st != 200:
        return S.err("%s: HTTP %d" % (kind, st), data[:200].decode("utf-8", "replace"))
    try:
        j = json.loads(data)
        ok = j.get("status") == "ok" and isinstance(j.get("agent_card"), dict)
    except ValueError:
        ok = False
    return S.good(kind) if ok else S.err(kind + ": unexpected answer", data[:200].decode("utf-8", "replace"))


def get_task(conn, token, n):
    if not recent:
        return
    tid = random.choice(recent)
    v1 = n % 2 == 1
    kind = "GetTask" if v1 else "tasks/get"
    res = rpc(conn, token, kind, {"id": tid, "historyLength": 1}, kind, v1)
    if res is None:
        return
    if res.get("id") != tid:
        return S.err(kind + ": wrong task", json.dumps(res)[:200])
    S.good(kind)


def blocking_send(conn, token, n):
    kind = "message/send blocking"
    res = rpc(conn, token, "message/send", {
        "message": op_msg("diag.timer", {"steps": 1, "interval_ms": INSTANT_MS}),
        "configuration": {"blocking": True, "historyLength": 0}}, kind)
    if res is None:
        return
    if res.get("id"):
        note_task(res["id"])
    st = norm_state((res.get("status") or {}).get("state"))
    if st != "completed":
        return S.err(kind + ": answered " + (st or "no state"), json.dumps(res)[:200])
    S.good(kind)


def list_tasks(conn, token, n):
    kind = "ListTasks"
    res = rpc(conn, token, "ListTasks", {"pageSize": 20, "includeArtifacts": False}, kind, True)
    if res is None:
        return
    if not isinstance(res.get("tasks"), list):
        return S.err(kind + ": no tasks array", json.dumps(res)[:200])
    S.good(kind)


MIX = [(discovery, 35), (get_task, 35), (blocking_send, 25), (list_tasks, 5)]


def load_worker(k, token):
    conn = Conn()
    period = LOAD_THREADS / RATE
    nxt = time.monotonic() + random.uniform(0, period)
    n = k
    fns = [f for f, w in MIX for _ in range(w)]
    try:
        while not load_stop.is_set():
            delay = nxt - time.monotonic()
            if delay > 0:
                if load_stop.wait(delay):
                    break
            elif delay < -1:
                nxt = time.monotonic()      # behind: do not burst to catch up
            nxt += period
            random.choice(fns)(conn, token, n)
            n += LOAD_THREADS
    finally:
        conn.close()


def sse_worker(i, token, ramp_s):
    """Holds one SSE stream open for the whole run, reopened when it ends:
    message/stream (v0.3), SendStreamingMessage (v1.0), or tasks/resubscribe
    on a task started non-blocking.  Each stream's task is a diag.timer of
    SSE_TASK_MIN_S..SSE_TASK_MAX_S."""
    if load_stop.wait(ramp_s * i / max(1, SSE)):
        return
    conn = Conn(timeout=max(60, 3 * SSE_INTERVAL_MS // 1000 + 45))
    helper = Conn()
    rnd = random.Random(i)
    mode = ("message/stream", "SendStreamingMessage", "message/stream", "tasks/resubscribe")[i % 4]
    me = threading.get_ident()
    try:
        while not load_stop.is_set():
            steps = max(1, int(rnd.uniform(SSE_TASK_MIN_S, SSE_TASK_MAX_S) * 1000 / SSE_INTERVAL_MS))
            params = {"steps": steps, "interval_ms": SSE_INTERVAL_MS}
            v1 = mode == "SendStreamingMessage"
            if mode == "tasks/resubscribe":
                res = rpc(helper, token, "message/send", {
                    "message": op_msg("diag.timer", params),
                    "configuration": {"blocking": False, "historyLength": 0}},
                    "message/send non-blocking")
                if res is None or not res.get("id"):
                    load_stop.wait(1)
                    continue
                note_task(res["id"])
                S.good("message/send non-blocking")
                rparams = {"id": res["id"]}
            else:
                rparams = {"message": op_msg("diag.timer", params),
                           "configuration": {"historyLength": 0}}
            stream_once(conn, token, mode, rparams, v1, me)
    finally:
        with open_lock:
            open_socks.pop(me, None)
        conn.close()
        helper.close()


def stream_once(conn, token, method, params, v1, me):
    kind = "SSE " + method
    body = json.dumps({"jsonrpc": "2.0", "id": next_id(), "method": method, "params": params}).encode()
    opened = False
    rpc_error = False
    final_state = None
    tid = params.get("id")
    try:
        c = conn.open()
        with open_lock:
            open_socks[me] = c.sock
        if load_stop.is_set():
            return
        S.req()
        c.request("POST", BASE + "/a2a", body=body, headers=hdrs(token, v1))
        r = c.getresponse()
        if r.status != 200:
            data = r.read()
            S.err("%s: HTTP %d" % (kind, r.status), data[:200].decode("utf-8", "replace"))
            return
        ctype = r.getheader("Content-Type", "")
        if not ctype.startswith("text/event-stream"):
            data = r.read()
            S.err(kind + ": not an event stream", data[:200].decode("utf-8", "replace"))
            return
        while True:
            line = r.readline()
            if not line:
                break
            if not line.startswith(b"data:"):
                continue        # heartbeats, blank lines
            try:
                j = json.loads(line[5:])
            except ValueError:
                S.err(kind + ": bad event", line[:200].decode("utf-8", "replace"))
                continue
            with S.lock:
                S.sse_events += 1
            if "error" in j:
                rpc_error = True
                S.err("%s: JSON-RPC %s" % (kind, (j["error"] or {}).get("code")), json.dumps(j["error"]))
                continue
            res = j.get("result") or {}
            if v1:
                ev = res.get("task") or res.get("statusUpdate")
                st = (ev or {}).get("status", {}).get("state")
                if res.get("task"):
                    tid = res["task"].get("id")
            else:
                ev = res if res.get("kind") in ("task", "status-update") else None
                st = (ev or {}).get("status", {}).get("state")
                if res.get("kind") == "task":
                    tid = res.get("id")
            if not opened and tid:
                opened = True
                note_task(tid)
                S.sse(+1)
            st = norm_state(st)
            if st in TERMINAL or st == "input-required":
                final_state = st
        r.close()
        conn.last = time.monotonic()
    except (OSError, http.client.HTTPException) as e:
        conn.close()
        if not load_stop.is_set():
            S.err(kind + ": connection error", "%s: %s" % (type(e).__name__, e))
            load_stop.wait(1)
        return
    finally:
        if opened:
            S.sse(-1)
        with open_lock:
            open_socks.pop(me, None)
    if load_stop.is_set() and final_state is None:
        return              # closed by the stop
    if rpc_error:
        load_stop.wait(1)   # counted above
    elif not opened:
        S.err(kind + ": no task event")
    elif final_state is None:
        S.err(kind + ": ended without a final state", tid or "")
    elif final_state != "completed":
        S.err(kind + ": ended " + final_state, tid or "")
    else:
        with S.lock:
            S.sse_done += 1
        S.good(kind)


def pipeline_worker(k, token, media, done_list):
    env = Envelope(token)
    n = 0
    try:
        while not load_stop.is_set():
            n += 1
            subject = "soak%d_%03d" % (k, n)
            try:
                tid = env.submit("instag.pipeline", {
                    "subject": subject, "video": media["video"], "audio": media["audio"],
                    "gpu_type_ids": [GPU], "iterations": ITERATIONS, "n_views": N_VIEWS})
            except Fail as e:
                S.err("pipeline: submit failed", str(e))
                load_stop.wait(2)
                continue
            note_task(tid)
            t0 = time.monotonic()
            try:
                res = env.wait(tid, 1.0, PIPE_LIMIT_S)
            except Fail as e:
                S.err("pipeline: tasks.get failed", str(e))
                res = {"state": "unknown"}
            st = res["state"]
            with S.lock:
                S.pipelines[st] += 1
            done_list.append((tid, st, time.monotonic() - t0))
            if st == "completed":
                S.good("pipeline")
            else:
                code = ((res.get("error") or {}).get("code")) if isinstance(res.get("error"), dict) else None
                S.err("pipeline: ended %s%s" % (st, " " + code if code else ""),
                      "%s: %s" % (tid, json.dumps(res.get("error"))[:300]))
    finally:
        env.close()


# ---- faults ----------------------------------------------------------------------
FAULTS = [
    ("429", lambda r: {"rate_limit": {"count": r.randint(2, 4), "retry_after": 1}}),
    ("5xx", lambda r: {"server_error": {"count": r.randint(2, 4), "status": r.choice([500, 502, 503])}}),
    ("429 create", lambda r: {"rate_limit": {"count": 1, "retry_after": 1, "route": "POST /v2/pods"}}),
    ("5xx get", lambda r: {"server_error": {"count": 2, "status": 503, "route": "GET /v2/pods/{id}"}}),
    ("5xx delete", lambda r: {"server_error": {"count": 1, "status": 500, "route": "DELETE /v2/pods/{id}"}}),
]


def fault_injector():
    fake = Fake()
    rnd = random.Random(15)
    k = 0
    if load_stop.wait(FAULT_EVERY_S / 2.0):
        return
    while not load_stop.is_set():
        name, make = FAULTS[k % len(FAULTS)]
        k += 1
        try:
            st, data = fake.call("POST", "/_fake/faults", make(rnd))
            if st == 200:
                with S.lock:
                    S.faults[name] += 1
            else:
                S.err("fault injection: HTTP %d" % st, data[:200].decode("utf-8", "replace"))
        except Fail as e:
            S.err("fault injection: connection error", str(e))
        if load_stop.wait(FAULT_EVERY_S):
            break
    fake.close()


def ssh_dropper():
    if load_stop.wait(SSH_DROP_EVERY_S * 0.7):
        return
    while not load_stop.is_set():
        try:
            r = subprocess.run([os.path.join(SRCDIR, "tests/harness/pod"), "drop", POD_DIR],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
            msg = r.stderr.decode("utf-8", "replace")
            if r.returncode != 0:
                S.err("ssh drop: status %d" % r.returncode, msg[-200:])
            else:
                procs = 0
                for line in msg.splitlines():
                    if "dropping connections: sshd processes" in line and "(none)" not in line:
                        procs += len(line.split("sshd processes", 1)[1].split())
                with S.lock:
                    S.drops += 1
                    S.drop_procs += procs
        except (OSError, subprocess.TimeoutExpired) as e:
            S.err("ssh drop: " + type(e).__name__, str(e))
        if load_stop.wait(SSH_DROP_EVERY_S):
            break


# ---- sampling --------------------------------------------------------------------
samples = []       # dicts: t, label, VmRSS, VmHWM, Threads, fds, sse, agent_sse, requests, errors


def take_sample(t, label, mconn):
    p = proc_sample()
    m = metrics(mconn)
    with S.lock:
        s = {"t": t, "label": label, "rss": p.get("VmRSS", 0), "hwm": p.get("VmHWM", 0),
             "threads": p.get("Threads", 0), "fds": p.get("fds", 0), "sse": S.sse_open,
             "agent_sse": int(m.get("instag_agent_sse_streams", -1)),
             "waits": int(m.get("instag_agent_blocking_waits", -1)),
             "active": int(m.get("instag_agent_tasks_active", -1)),
             "requests": S.requests, "errors": sum(S.errors.values())}
    samples.append(s)
    print(fmt_sample(s), flush=True)
    return s


HDR = "%-8s %9s %9s %7s %5s %5s %9s %6s %6s %9s %6s" % (
    "t", "rss_kib", "hwm_kib", "threads", "fds", "sse", "agent_sse", "waits", "active", "requests", "errors")


def fmt_sample(s):
    return "%-8s %9d %9d %7d %5d %5d %9d %6d %6d %9d %6d" % (
        s["label"], s["rss"], s["hwm"], s["threads"], s["fds"], s["sse"], s["agent_sse"],
        s["waits"], s["active"], s["requests"], s["errors"])


# ---- the end -----------------------------------------------------------------------
def count_nonterminal(conn, token):
    """Tasks of the soak's owner in a non-terminal state, by ListTasks
    (totalSize per state); None when the agent does not answer."""
    total = 0
    per = {}
    for st in ("submitted", "working", "input-required"):
        res = rpc(conn, token, "ListTasks", {"status": st, "pageSize": 10, "includeArtifacts": False},
                  "final ListTasks", True)
        if res is None:
            return None, per, []
        n = int(res.get("totalSize", 0))
        per[st] = n
        total += n
    ids = []
    if total:
        for st in per:
            if per[st]:
                res = rpc(conn, token, "ListTasks", {"status": st, "pageSize": 20, "includeArtifacts": False},
                          "final ListTasks", True) or {}
                ids += [(t.get("id"), st, (t.get("metadata") or {}).get("operation")) for t in res.get("tasks", [])]
    return total, per, ids


def main():
    fake = Fake()
    mconn = Conn()
    print("prep: a pod, instag.setup_environment, the licensed placeholders, the pod terminated; "
          "a token for subject 'soak'; the uploads", flush=True)
    token, media = prep()

    time.sleep(2)
    print()
    print("load: %d s; %d SSE streams; %d pipelines at a time; %.0f req/s over %d threads "
          "(discovery 35%%, GetTask 35%%, blocking message/send 25%%, ListTasks 5%%); "
          "a RunPod fault every %d s, an SSH drop every %d s; samples every %d s"
          % (DURATION, SSE, PIPELINES, RATE, LOAD_THREADS, FAULT_EVERY_S, SSH_DROP_EVERY_S, SAMPLE_S), flush=True)
    print(HDR, flush=True)
    take_sample(0, "0s", mconn)
    t0 = time.monotonic()
    ramp_s = min(30.0, DURATION / 4.0)
    threads = []
    pipes_done = []
    for k in range(LOAD_THREADS):
        threads.append(threading.Thread(target=load_worker, args=(k, token), daemon=True))
    for i in range(SSE):
        threads.append(threading.Thread(target=sse_worker, args=(i, token, ramp_s), daemon=True))
    pthreads = [threading.Thread(target=pipeline_worker, args=(k, token, media, pipes_done), daemon=True)
                for k in range(PIPELINES)]
    side = [threading.Thread(target=fault_injector, daemon=True),
            threading.Thread(target=ssh_dropper, daemon=True)]
    for t in threads + pthreads + side:
        t.start()

    k = 1
    dead = False
    while True:
        nxt = t0 + k * SAMPLE_S
        if nxt > t0 + DURATION:
            break
        time.sleep(max(0.0, nxt - time.monotonic()))
        take_sample(k * SAMPLE_S, "%ds" % (k * SAMPLE_S), mconn)
        k += 1
        if not agent_alive():
            dead = True
            break
    time.sleep(max(0.0, t0 + DURATION - time.monotonic()))
    load_s = time.monotonic() - t0

    # ---- stop the load ----
    load_stop.set()
    try:
        fake.call("DELETE", "/_fake/faults")
    except Fail as e:
        print("could not clear the faults: %s" % e)
    with open_lock:
        socks = list(open_socks.values())
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass
    tj = time.monotonic()
    for t in threads + side:
        t.join(max(0.1, 60 - (time.monotonic() - tj)))
    stuck = sum(t.is_alive() for t in threads + side)
    print()
    print("load stopped after %.1f s (%d load threads still running after 60 s); draining: "
          "running pipelines finish, every task the soak made must end (at most %d s)"
          % (load_s, stuck, DRAIN_S), flush=True)

    # ---- drain: pipelines end, every task terminal ----
    td = time.monotonic()
    for t in pthreads:
        t.join(max(0.1, DRAIN_S - (time.monotonic() - td)))
    pipes_stuck = sum(t.is_alive() for t in pthreads)
    chk = Conn()
    nonterm, per, ids = None, {}, []
    while True:
        nonterm, per, ids = count_nonterminal(chk, token)
        if nonterm == 0 or time.monotonic() - td > DRAIN_S or not agent_alive():
            break
        time.sleep(2)
    drain_s = time.monotonic() - td
    print("drain: %.1f s; non-terminal tasks of the soak: %s (%s)"
          % (drain_s, "unknown" if nonterm is None else nonterm,
             ", ".join("%s %d" % kv for kv in per.items())), flush=True)
    for tid, st, opn in ids[:10]:
        print("  not terminal: %s %s (%s)" % (tid, st, opn))
    hard_stop.set()

    # ---- pods ----
    live, listed = [], 0
    tl = time.monotonic()
    while True:
        try:
            live, listed = fake.live_pods()
        except Fail as e:
            print("pod listing failed: %s" % e)
            live = [{"id": "?"}]
        if not live or time.monotonic() - tl > 60:
            break
        time.sleep(1)
    print("stand-in pods afterwards: %d listed, %d not TERMINATED%s"
          % (listed, len(live), (": " + " ".join(str(p.get("id")) for p in live[:10])) if live else ""))

    # clean up what is left, so the harness stops quickly (after the checks)
    for tid, st, opn in ids:
        rpc(chk, token, "tasks/cancel", {"id": tid}, "cleanup cancel")

    time.sleep(3)
    last = take_sample(int(time.monotonic() - t0), "end", mconn)
    m = metrics(mconn)

    # ---- report ----
    first = samples[0]
    load_samples = [s for s in samples if s["label"] != "end"]
    ref_t = min(WARM_S, (DURATION // 2) // SAMPLE_S * SAMPLE_S)
    ref = next((s for s in load_samples if s["t"] >= ref_t and s["t"] > 0), load_samples[-1])
    load_last = load_samples[-1]
    rss_bound = int(ref["rss"] * (1 + RSS_PCT / 100.0) + RSS_SLACK_KIB)
    tail = [s for s in load_samples if s["t"] >= ref["t"]]
    print()
    print("samples (every %d s; 'end' after the drain):" % SAMPLE_S)
    print(HDR)
    for s in samples:
        print(fmt_sample(s))
    print("first:   " + fmt_sample(first))
    print("ref:     " + fmt_sample(ref) + "   (the reference for RSS: the sample at %d s)" % ref["t"])
    print("last:    " + fmt_sample(last))
    print("max:     rss %d KiB, hwm %d KiB, threads %d, fds %d, sse %d (agent's gauge %d)"
          % (max(s["rss"] for s in samples), max(s["hwm"] for s in samples),
             max(s["threads"] for s in samples), max(s["fds"] for s in samples),
             max(s["sse"] for s in samples), max(s["agent_sse"] for s in samples)))
    half = [s for s in tail if s["t"] >= load_last["t"] / 2.0]
    if len(half) >= 2 and half[-1]["t"] > half[0]["t"]:
        d = half[-1]["rss"] - half[0]["rss"]
        print("RSS from the reference on: max %d KiB; over the second half of the load (%d s to %d s): "
              "%+d KiB (%+.1f KiB/min)" % (max(s["rss"] for s in tail), half[0]["t"], half[-1]["t"], d,
                                           d * 60.0 / (half[-1]["t"] - half[0]["t"])))
    print()
    print("requests: %d; by kind (answers that passed the checks): %s"
          % (S.requests, ", ".join("%s %d" % kv for kv in sorted(S.ok.items()))))
    print("SSE: peak %d open at once (client side), %d streams completed, %d events"
          % (S.sse_peak, S.sse_done, S.sse_events))
    print("pipelines: %s (%d started)" % (", ".join("%s %d" % kv for kv in sorted(S.pipelines.items())) or "none",
                                           sum(S.pipelines.values())))
    if pipes_done:
        ds = sorted(d for _, st, d in pipes_done if st == "completed")
        if ds:
            print("  completed pipelines took %.1f s median, %.1f s max (client side)"
                  % (ds[len(ds) // 2], ds[-1]))
    print("faults injected: %s; SSH drops: %d (%d sshd processes killed)"
          % (", ".join("%s %d" % kv for kv in sorted(S.faults.items())) or "none", S.drops, S.drop_procs))
    rp = {k.split('outcome="')[1].rstrip('"}'): int(v) for k, v in m.items()
          if k.startswith("instag_agent_runpod_calls_total{")}
    print("agent's RunPod calls by outcome: %s" % ", ".join("%s %d" % kv for kv in sorted(rp.items()) if kv[1]))
    print("agent's SSH sessions: opened %d, reused %d, dropped %d"
          % (m.get("instag_agent_ssh_sessions_opened_total", -1), m.get("instag_agent_ssh_sessions_reused_total", -1),
             m.get("instag_agent_ssh_sessions_dropped_total", -1)))
    print("tasks the soak made: %d (ids kept by the client)" % len(created))
    nerr = sum(S.errors.values())
    print("errors: %d%s" % (nerr, "" if nerr else " (none)"))
    for kind, n in sorted(S.errors.items(), key=lambda kv: -kv[1]):
        print("  %6d  %s%s" % (n, kind, ("   e.g. " + S.example[kind]) if S.example.get(kind) else ""))

    # ---- criteria ----
    problems = []
    if dead or not agent_alive():
        problems.append("the agent (pid %d) died" % AGENT_PID)
    if load_last["rss"] > rss_bound:
        problems.append("RSS grew: %d KiB at the end of the load > %d KiB (the %d s sample %d KiB + %g%% + %d KiB)"
                        % (load_last["rss"], rss_bound, ref["t"], ref["rss"], RSS_PCT, RSS_SLACK_KIB))
    if last["rss"] > rss_bound:
        problems.append("RSS after the drain %d KiB > %d KiB" % (last["rss"], rss_bound))
    if last["fds"] > first["fds"] + FD_SLACK:
        problems.append("open fds after the drain %d > %d (first sample %d + %d)"
                        % (last["fds"], first["fds"] + FD_SLACK, first["fds"], FD_SLACK))
    if last["threads"] > first["threads"] + THREAD_SLACK:
        problems.append("threads after the drain %d > %d (first sample %d + %d)"
                        % (last["threads"], first["threads"] + THREAD_SLACK, first["threads"], THREAD_SLACK))
    if nonterm is None or nonterm:
        problems.append("%s task(s) of the soak not terminal after the drain" % ("unknown" if nonterm is None else nonterm))
    if live:
        problems.append("%d pod(s) left at the stand-in" % len(live))
    if nerr:
        problems.append("%d error(s) (see above)" % nerr)
    if stuck or pipes_stuck:
        problems.append("%d load and %d pipeline thread(s) did not stop" % (stuck, pipes_stuck))
    print()
    print("criteria: RSS at the end of the load and after the drain <= the %d s sample + %g%% + %d KiB (%d KiB); "
          "fds and threads after the drain <= the first sample + %d and + %d; every task terminal; no pod left; "
          "no error; the agent alive"
          % (ref["t"], RSS_PCT, RSS_SLACK_KIB, rss_bound, FD_SLACK, THREAD_SLACK))
    for p in problems:
        print("FAIL: " + p)
    print("duration_s=%d requests=%d errors=%d sse_peak=%d pipelines_done=%d rss_first_kib=%d rss_last_kib=%d "
          "fds_first=%d fds_last=%d threads_first=%d threads_last=%d nonterminal=%s leaked=%d"
          % (round(load_s), S.requests, nerr, S.sse_peak, S.pipelines.get("completed", 0),
             first["rss"], last["rss"], first["fds"], last["fds"], first["threads"], last["threads"],
             "unknown" if nonterm is None else nonterm, len(live)))
    return 1 if problems else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Fail as e:
        sys.stdout.flush()
        print("FAIL: %s" % e)
        sys.exit(1)
