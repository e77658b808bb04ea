#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Helper of bench/agents (python3, standard library only; psql for the
store).  Two measurements against a running harness (tests/harness/start
with IA_STORE=postgresql), whose exported variables it reads from the
environment:

    agents.py pipelines   N instag.pipeline tasks at once; prints one JSON line
    agents.py failover    SIGKILL the holder of a diag.timer task; one JSON line

pipelines: prepares the pod's checkout (a pod, instag.setup_environment,
the licensed placeholder files, the pod terminated: as bench/pipeline),
uploads one video and one audio, reads every agent's
instag_agent_task_steps_total and the database's xact_commit, submits N
pipelines (SUBMITTERS connections), waits (at most LIMIT_S) until none is
unfinished by reading the tasks table every POLL_MS, reads the counters
again and counts the stand-in's live pods.

failover: RUNS times: submit a diag.timer task (1000 steps of STEP_MS)
through nginx, wait until it has run two steps, read its lease_holder
(host/pid/nonce) and SIGKILL that agent (the pid must be one of the
harness's AGENT<i>_PID_FILE), then read the row every 20 ms until another
holder has run a step of it; report the time from the kill to that step
(its updated_ms) and to the first read that showed the new holder; cancel
the task and start the killed agent again (tests/harness/agent).
"""

import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

E = os.environ
GPU = "NVIDIA GeForce RTX 4090"
TERMINAL = ("completed", "failed", "canceled", "rejected")
SETTLE_S = 11           # see xact_commit()
CTX = ssl.create_default_context(cafile=E["AGENT_CA"])


class Fail(Exception):
    pass


def log(msg):
    print("agents.py: %s" % msg, file=sys.stderr, flush=True)


class Agent:
    """One keep-alive HTTPS connection to an agent URL (through nginx)."""

    def __init__(self, url, token):
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.base = u.hostname, u.port, u.path.rstrip("/")
        self.hdrs = {"Authorization": "Bearer " + token,
                     "Content-Type": "application/json"}
        self.c = None

    def close(self):
        if self.c is not None:
            self.c.close()
            self.c = None

    def req(self, method, path, raw=None, headers=None, retry=False):
        for attempt in (0, 1):
            try:
                if self.c is None:
                    self.c = http.client.HTTPSConnection(
                        self.host, self.port, context=CTX, timeout=60)
                self.c.request(method, self.base + path, body=raw,
                               headers=headers or self.hdrs)
                r = self.c.getresponse()
                return r.status, r.read()
            except (OSError, http.client.HTTPException) as e:
                self.close()
                if not retry or attempt:
                    raise Fail("%s %s: %s" % (method, path, e or type(e).__name__))
        raise Fail("unreachable")

    def op(self, operation, params, retry=False):
        body = json.dumps({"type": "task_request", "payload": {
            "operation": operation, "params": params}}).encode()
        st, data = self.req("POST", "/api/a2a", body, retry=retry)
        if st != 200:
            raise Fail("%s: HTTP %d: %s" % (operation, st, data[:300]))
        return json.loads(data)

    def submit(self, operation, params):
        j = self.op(operation, params)
        if j.get("status") == "error" or not j.get("task_id"):
            raise Fail("%s refused: %s" % (operation, json.dumps(j)[:400]))
        return j["task_id"]

    def run(self, operation, params, limit=300):
        tid = self.submit(operation, params)
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit:
            j = self.op("tasks.get", {"task_id": tid}, retry=True)
            res = j.get("result") or {}
            if res.get("state") in TERMINAL:
                if res["state"] != "completed":
                    raise Fail("%s %s ended %s: %s" % (operation, tid, res["state"],
                                                       json.dumps(res.get("error"))[:500]))
                return res
            time.sleep(0.1)
        raise Fail("%s %s did not end in %d s" % (operation, tid, limit))

    def upload(self, name, path):
        with open(path, "rb") as f:
            body = f.read()
        h = dict(self.hdrs, **{"Content-Type": "application/octet-stream"})
        st, data = self.req("PUT", "/uploads/" + name, body, headers=h)
        if st != 201:
            raise Fail("PUT /uploads/%s: HTTP %d %s" % (name, st, data[:200]))
        return json.loads(data)["upload_id"]

    def counters(self):
        """The counters of /metrics this benchmark reads: task steps, and
        leases claimed and lost (0 when the agent has no shared store)."""
        st, data = self.req("GET", "/metrics", retry=True)
        if st != 200:
            raise Fail("/metrics: HTTP %d" % st)
        out = {}
        for key, name in (("steps", b"instag_agent_task_steps_total"),
                          ("claimed", b"instag_agent_task_leases_claimed_total"),
                          ("lost", b"instag_agent_task_leases_lost_total")):
            m = re.search(rb"^" + name + rb" (\d+)", data, re.M)
            if m:
                out[key] = int(m.group(1))
            elif key == "steps":
                raise Fail("/metrics has no instag_agent_task_steps_total")
            else:
                out[key] = 0
        return out


def agent_urls():
    """The URL of each agent alone (AGENT<i>_URL), or AGENT_URL for one."""
    n = int(E.get("IA_AGENTS") or 1)
    if n == 1:
        return [E["AGENT_URL"]]
    return [E["AGENT%d_URL" % i] for i in range(1, n + 1)]


def psql(sql):
    """One statement through psql (one session); rows as lists of fields."""
    with open(E["PG_PASSWORD_FILE"]) as f:
        pw = f.read().strip()
    env = dict(E, PGPASSWORD=pw, PGCONNECT_TIMEOUT="10")
    r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                        "-d", E["PG_URL"], "-c", sql],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=60)
    if r.returncode != 0:
        raise Fail("psql: %s" % r.stderr.decode()[:300])
    return [line.split("\t") for line in r.stdout.decode().splitlines() if line]


def xact_commit():
    """The database's committed transactions.  A backend reports its
    counts when it goes idle, at most once a second, else within 10 s
    (PostgreSQL 15's PGSTAT_IDLE_INTERVAL): the callers let 11 s pass
    first."""
    return int(psql("SELECT xact_commit FROM pg_stat_database "
                    "WHERE datname = current_database()")[0][0])


def counters_all(tok):
    """counters() summed over the agents."""
    total = {}
    for url in agent_urls():
        a = Agent(url, tok)
        try:
            for k, v in a.counters().items():
                total[k] = total.get(k, 0) + v
        finally:
            a.close()
    return total


def as_user(cmd):
    user = E.get("POD_SSH_USER", "")
    if os.geteuid() == 0 and user and user != "root":
        return ["runuser", "-u", user, "--", "sh", "-c", cmd]
    return ["sh", "-c", cmd]


def place_assets():
    """The licensed placeholder files into the pod's checkout (as
    bench/pipeline and tests/integration/check_pipeline.c do)."""
    mm = os.path.join(E["SRCDIR"], "tests/fake-instag/make-media")
    cmd = ("cd '%s/InsTaG' && M='%s' && "
           "$M bfm data_utils/face_tracking/3DMM/01_MorphableModel.mat && "
           "$M weights data_utils/easyportrait/fpn-fp-512.pth && "
           "for e in deepspeech ave esperanto hubert; do "
           "mkdir -p output/pretrain_$e && "
           "$M weights output/pretrain_$e/chkpnt_ema_face_latest.pth && "
           "$M weights output/pretrain_$e/chkpnt_ema_mouth_latest.pth; done") % (E["POD_ROOT"], mm)
    r = subprocess.run(as_user(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    if r.returncode != 0:
        raise Fail("placing the assets failed: %s" % r.stdout.decode()[-500:])


def live_pods():
    u = urllib.parse.urlsplit(E["RUNPOD_URL"])
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        c.request("GET", "/v2/pods", headers={"Authorization": "Bearer " + E["RUNPOD_API_KEY"]})
        r = c.getresponse()
        data = r.read()
        if r.status != 200:
            raise Fail("GET /v2/pods: HTTP %d" % r.status)
    finally:
        c.close()
    j = json.loads(data)
    pods = (j.get("pods") if isinstance(j, dict) else j) or []
    return sum(1 for p in pods if p.get("desiredStatus") != "TERMINATED")


# ---- pipelines ---------------------------------------------------------------
def pipelines():
    n = int(E["N"])
    poll_s = int(E["POLL_MS"]) / 1000.0
    limit = int(E["LIMIT_S"])
    nsub = int(E.get("SUBMITTERS") or 8)
    tok = E["AGENT_TOKEN"]
    work = E["WORK"]
    a = Agent(E["AGENT_URL"], tok)
    media = {"video": a.upload("b16_v.mp4", os.path.join(work, "v.mp4")),
             "audio": [a.upload("b16_a0.wav", os.path.join(work, "a0.wav"))]}
    r = a.run("runpod.provision_pod", {"gpu_type_ids": [GPU]})
    pod = r["result"]["pod_id"]
    try:
        a.run("instag.setup_environment", {"pod_id": pod})
        place_assets()
    finally:
        a.run("runpod.terminate_pod", {"pod_id": pod})
    # one pipeline first, unrecorded: does the whole path work?
    a.run("instag.pipeline", {"subject": "warm", "video": media["video"],
                              "audio": media["audio"], "gpu_type_ids": [GPU],
                              "iterations": 200, "n_views": 30})
    a.close()
    log("prep done (checkout, placeholders, one warm-up pipeline)")

    time.sleep(SETTLE_S)
    c0, x0 = counters_all(tok), xact_commit()
    t0_ms = int(time.time() * 1000)
    t0 = time.monotonic()
    ids, errs = [], []
    lock = threading.Lock()

    def submitter(k):
        c = Agent(E["AGENT_URL"], tok)
        try:
            for i in range(k, n, nsub):
                try:
                    tid = c.submit("instag.pipeline", {
                        "subject": "p%04d" % i, "video": media["video"],
                        "audio": media["audio"], "gpu_type_ids": [GPU],
                        "iterations": 200, "n_views": 30})
                    with lock:
                        ids.append(tid)
                except Fail as e:
                    with lock:
                        errs.append(str(e))
        finally:
            c.close()

    th = [threading.Thread(target=submitter, args=(k,)) for k in range(nsub)]
    for t in th:
        t.start()
    for t in th:
        t.join(600)
    submit_s = time.monotonic() - t0
    idlist = ",".join("'%s'" % i for i in ids if re.fullmatch(r"[0-9a-f-]+", i))
    if len(ids) != n or not idlist:
        raise Fail("%d of %d submits failed: %s" % (n - len(ids), n, errs[:3]))
    polls = 0
    states = {}
    while True:
        rows = psql("SELECT state, count(*), max(updated_ms) FROM tasks "
                    "WHERE id IN (%s) GROUP BY state" % idlist)
        polls += 1
        states = {r[0]: int(r[1]) for r in rows}
        last_ms = max((int(r[2]) for r in rows), default=t0_ms)
        if sum(v for k, v in states.items() if k in TERMINAL) == n:
            break
        if time.monotonic() - t0 > limit:
            break
        time.sleep(poll_s)
    wall = time.monotonic() - t0
    done = sum(v for k, v in states.items() if k in TERMINAL) == n
    time.sleep(SETTLE_S)
    c1, x1 = counters_all(tok), xact_commit()
    holders = psql("SELECT count(DISTINCT split_part(lease_holder, '/', 2)) FROM tasks "
                   "WHERE id IN (%s)" % idlist)[0][0]
    steps = c1["steps"] - c0["steps"]
    # our own reads are in the count: the polls (one transaction each)
    # and the first xact_commit() are subtracted; the agents' background
    # work during the two settling waits (lease renewals, claims) is not
    commits = x1 - x0 - polls - 1
    out = {"n": n, "all_ended": done, "states": states,
           "completed": states.get("completed", 0),
           "wall_s": round((last_ms - t0_ms) / 1000.0, 2) if done else round(wall, 2),
           "submit_s": round(submit_s, 2), "steps": steps,
           "steps_per_pipeline": round(steps / n, 2),
           "xact_commits": commits,
           "commits_per_step": round(commits / steps, 3) if steps else None,
           "commits_per_pipeline": round(commits / n, 1),
           "agents_seen": int(holders or 0), "live_pods_after": live_pods(),
           "leases_claimed": c1["claimed"] - c0["claimed"],
           "leases_lost": c1["lost"] - c0["lost"]}
    if not done:
        # cancel what is left, so the stand-in's pods are released
        c = Agent(E["AGENT_URL"], tok)
        for tid in psql("SELECT id FROM tasks WHERE id IN (%s) AND state NOT IN "
                        "('completed','failed','canceled','rejected')" % idlist):
            try:
                c.op("tasks.cancel", {"task_id": tid[0]})
            except Fail:
                pass
        c.close()
    print(json.dumps(out, sort_keys=True), flush=True)
    return 0 if done else 1


# ---- failover ----------------------------------------------------------------
def agent_pids():
    n = int(E.get("IA_AGENTS") or 1)
    out = {}
    for i in range(1, n + 1):
        try:
            with open(E["AGENT%d_PID_FILE" % i]) as f:
                out[int(f.read().strip())] = i
        except (OSError, ValueError, KeyError):
            pass
    return out


def row(tid):
    r = psql("SELECT lease_holder, lease_token, lease_until, version, updated_ms, state "
             "FROM tasks WHERE id = '%s'" % tid)
    if not r:
        raise Fail("task %s is not in the store" % tid)
    h, tok, until, ver, upd, st = r[0]
    return {"holder": h, "token": int(tok), "until": int(until), "version": int(ver),
            "updated_ms": int(upd), "state": st}


def failover_once(a, step_ms, lease_s):
    tid = a.submit("diag.timer", {"steps": 1000, "interval_ms": step_ms})
    if not re.fullmatch(r"[0-9a-f-]+", tid):
        raise Fail("strange task id %r" % tid)
    t0 = time.monotonic()
    while True:
        r = row(tid)
        if r["version"] >= 3 and r["holder"]:
            break
        if time.monotonic() - t0 > 30:
            raise Fail("diag.timer %s ran no step in 30 s: %s" % (tid, r))
        time.sleep(0.05)
    pids = agent_pids()
    try:
        pid = int(r["holder"].split("/")[1])
    except (IndexError, ValueError):
        raise Fail("cannot read a pid from lease_holder %r" % r["holder"])
    if pid not in pids:
        raise Fail("lease_holder pid %d is none of the harness's agents %s" % (pid, pids))
    idx = pids[pid]
    # wait for a fresh step (just after one, as a crash would most
    # likely find it: between steps)
    v = r["version"]
    while row(tid)["version"] == v and time.monotonic() - t0 < 60:
        time.sleep(0.01)
    before = row(tid)
    t_kill_ms = time.time() * 1000.0
    os.kill(pid, signal.SIGKILL)
    seen_ms = None
    while True:
        r = row(tid)
        now_ms = time.time() * 1000.0
        if r["holder"] != before["holder"] and seen_ms is None:
            seen_ms = now_ms
        if r["holder"] != before["holder"] and r["version"] > before["version"] \
                and r["updated_ms"] > t_kill_ms:
            break
        if now_ms - t_kill_ms > (3 * lease_s + 30) * 1000:
            raise Fail("no other agent ran a step of %s within %d s of the kill: %s"
                       % (tid, 3 * lease_s + 30, r))
        time.sleep(0.02)
    res = {"task": tid, "killed_agent": idx,
           "new_agent": agent_pids().get(int(r["holder"].split("/")[1]), 0),
           "lease_left_at_kill_s": round((before["until"] - t_kill_ms) / 1000.0, 2),
           "claim_seen_s": round((seen_ms - t_kill_ms) / 1000.0, 2),
           "next_step_s": round((r["updated_ms"] - t_kill_ms) / 1000.0, 2),
           "token": [before["token"], r["token"]]}
    a.op("tasks.cancel", {"task_id": tid}, retry=True)
    # the killed agent back, with the same settings (INSTAG_AGENT_* are
    # in our environment)
    rc = subprocess.run([os.path.join(E["SRCDIR"], "tests/harness/agent"), E["HARNESS_DIR"],
                         "start", str(idx)], stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE, timeout=120)
    if rc.returncode != 0:
        raise Fail("restarting agent %d failed: %s" % (idx, rc.stderr.decode()[-300:]))
    return res


def failover():
    runs = int(E["RUNS"])
    step_ms = int(E["STEP_MS"])
    lease_s = int(E["INSTAG_AGENT_LEASE_SECONDS"])
    out = []
    for k in range(runs):
        a = Agent(E["AGENT_URL"], E["AGENT_TOKEN"])
        try:
            r = failover_once(a, step_ms, lease_s)
        finally:
            a.close()
        log("failover run %d (lease %d s): %s" % (k + 1, lease_s, json.dumps(r)))
        out.append(r)
        time.sleep(1)
    ns = sorted(r["next_step_s"] for r in out)
    print(json.dumps({"lease_s": lease_s, "runs": out,
                      "next_step_s": [r["next_step_s"] for r in out],
                      "min_s": ns[0], "max_s": ns[-1],
                      "median_s": ns[len(ns) // 2] if len(ns) % 2 else
                      round((ns[len(ns) // 2 - 1] + ns[len(ns) // 2]) / 2, 2)},
                     sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    try:
        if len(sys.argv) != 2 or sys.argv[1] not in ("pipelines", "failover"):
            raise Fail("usage: agents.py pipelines|failover")
        sys.exit(pipelines() if sys.argv[1] == "pipelines" else failover())
    except Fail as e:
        print("agents.py: FAIL: %s" % e, file=sys.stderr, flush=True)
        sys.exit(1)
