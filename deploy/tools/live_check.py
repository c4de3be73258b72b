#!/usr/bin/env python3
"""`scripts/check-deploy --live`: checks running wgate-api and wgate-worker processes and a Prometheus that
scrapes them (all started by scripts/check-deploy).

Sends a little traffic (accepted, rate-limited, synchronous and unauthenticated requests) so that every metric has
a sample, then checks: /healthz and /readyz answer 200; each process exports the metrics deploy/README.md lists for it;
Prometheus has both targets up, every alert rule healthy, and accepts and evaluates every dashboard query.
Exits 1 on any problem.
"""
import argparse
import base64
import hashlib
import hmac
import json
import subprocess
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

API = {
    "wgate_http_requests_total", "wgate_http_request_duration_seconds", "wgate_auth_failures_total",
    "wgate_rate_limited_total", "wgate_jobs_enqueued_total", "wgate_sync_wait_seconds", "wgate_redis_errors_total",
    "wgate_webhook_events_received_total", "wgate_webhook_deliveries_total",
}
WORKER = {
    "wgate_jobs_finished_total", "wgate_job_attempt_duration_seconds", "wgate_job_latency_seconds",
    "wgate_upstream_requests_total", "wgate_upstream_request_duration_seconds", "wgate_queue_jobs",
    "wgate_worker_busy", "wgate_queue_dead_letters",
    "wgate_webhook_deliveries_total", "wgate_webhook_delivery_duration_seconds", "wgate_webhook_lag_seconds",
}
BOTH = {"wgate_build_info"}

problems = []


def problem(msg):
    problems.append(msg)
    print(f"FAIL: {msg}")


def http(method, url, body=None, headers=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e)


def wait_for(what, fn, timeout=60):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        ok, last = fn()
        if ok:
            return True
        time.sleep(0.5)
    problem(f"{what}: not after {timeout}s ({last})")
    return False


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def token(secret, tenant):
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    now = int(time.time())
    claims = b64(json.dumps({"sub": tenant, "aud": "wgate", "iat": now, "exp": now + 600}).encode())
    sig = hmac.new(secret.encode(), f"{head}.{claims}".encode(), hashlib.sha256).digest()
    return f"{head}.{claims}.{b64(sig)}"


def exported(text):
    """Metric family names in a Prometheus text exposition (histogram suffixes folded)."""
    names = set()
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        n = re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line).group(0)
        names.add(re.sub(r"_(bucket|sum|count)$", "", n) if n.endswith(("_bucket", "_sum", "_count")) else n)
    # families announced by # TYPE count as exported even without a sample
    names |= set(re.findall(r"^# TYPE (\S+)", text, re.M))
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--api", required=True)
    ap.add_argument("--api-admin", required=True)
    ap.add_argument("--worker-admin", required=True)
    ap.add_argument("--prometheus", required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--dashboard", default="deploy/grafana/wgate.json")
    a = ap.parse_args()

    for name, adm in (("api", a.api_admin), ("worker", a.worker_admin)):
        for path in ("/healthz", "/readyz"):
            wait_for(f"{name} {path} 200", lambda: (lambda s: (s[0] == 200, s))(http("GET", f"http://{adm}{path}")))

    # traffic: every metric gets a sample
    base = f"http://{a.api}/api/v1/session-create"
    t1 = {"Authorization": f"Bearer {token(a.secret, 'tenant-a')}", "Content-Type": "application/json"}
    statuses = []
    for i in range(8):
        s, _ = http("POST", base, {"name": f"check-deploy {i}"}, {**t1, "Prefer": "respond-async"})
        statuses.append(s)
    t2 = {"Authorization": f"Bearer {token(a.secret, 'tenant-b')}", "Content-Type": "application/json"}
    s_sync, body = http("POST", base, {"name": "check-deploy sync"}, {**t2, "Prefer": "wait=10"}, timeout=20)
    s_bad, _ = http("POST", base, {"name": "x"}, {"Authorization": "Bearer not-a-jwt", "Content-Type": "application/json"})
    print(f"traffic: async {statuses}, sync {s_sync}, bad token {s_bad}")
    if 202 not in statuses or 429 not in statuses:
        problem(f"expected 202 and 429 among async creates, got {statuses}")
    if s_sync != 200:
        problem(f"synchronous create answered {s_sync}: {body[:300]}")
    if s_bad != 401:
        problem(f"bad token answered {s_bad}")

    def finished():
        s, text = http("GET", f"http://{a.worker_admin}/metrics")
        return ('wgate_jobs_finished_total{' in text and "wgate_job_latency_seconds_count" in text), s
    wait_for("worker finished jobs (wgate_jobs_finished_total)", finished, timeout=30)
    time.sleep(3)  # one more queue gauge refresh

    _, api_text = http("GET", f"http://{a.api_admin}/metrics")
    _, worker_text = http("GET", f"http://{a.worker_admin}/metrics")
    for name, text, want in (("wgate-api", api_text, API | BOTH), ("wgate-worker", worker_text, WORKER | BOTH)):
        got = exported(text)
        missing = sorted(want - got)
        extra = sorted(n for n in got if n.startswith("wgate_") and n not in API | WORKER | BOTH)
        procs = sorted(n for n in got if n.startswith("process_"))
        print(f"{name}: exports {len([n for n in got if n.startswith('wgate_')])} wgate_* families, "
              f"{len(procs)} process_* ({', '.join(procs)})")
        if missing:
            problem(f"{name} does not export {missing}")
        if not procs:
            problem(f"{name} exports no process_* metrics")
        if extra:
            print(f"{name}: also exports (not in deploy/README.md): {extra}")
        # The exposition itself must lint clean (HELP text, names, units, counter suffixes).
        lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        if lint.returncode != 0 or lint.stdout.strip() or lint.stderr.strip():
            problem(f"promtool check metrics on {name}: {(lint.stdout + lint.stderr).strip()}")
        else:
            print(f"ok: promtool check metrics on {name}")
    for line in worker_text.splitlines():
        if line.startswith("wgate_queue_jobs{"):
            print(f"  {line}")

    prom = f"http://{a.prometheus}"

    def targets_up():
        s, body = http("GET", f"{prom}/api/v1/targets")
        if s != 200:
            return False, body
        ts = json.loads(body)["data"]["activeTargets"]
        state = {t["labels"]["job"]: t["health"] for t in ts}
        return (state.get("wgate-api") == "up" and state.get("wgate-worker") == "up"), state
    if wait_for("prometheus targets wgate-api and wgate-worker up", targets_up, timeout=30):
        print("ok: prometheus targets up")

    def rules_ok():
        s, body = http("GET", f"{prom}/api/v1/rules")
        if s != 200:
            return False, body
        rules = [r for g in json.loads(body)["data"]["groups"] for r in g["rules"]]
        bad = {r["name"]: (r["health"], r.get("lastError")) for r in rules if r["health"] != "ok"}
        return (len(rules) > 0 and not bad), bad or len(rules)
    if wait_for("prometheus alert rules evaluate with health ok", rules_ok, timeout=30):
        print("ok: every alert rule evaluates (health ok)")
    time.sleep(5)  # a few scrapes, so rate() over the dashboard's range has two samples

    with open(a.dashboard) as f:
        dash = json.load(f)

    def panels(ps):
        for p in ps:
            yield p
            yield from panels(p.get("panels", []))
    n = 0
    empty = []
    for p in panels(dash["panels"]):
        for t in p.get("targets", []):
            expr = re.sub(r"\$__rate_interval|\$__interval|\$__range", "1m", t["expr"])
            s, body = http("GET", f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
            n += 1
            if s != 200 or json.loads(body).get("status") != "success":
                problem(f"dashboard panel {p['title']!r}: prometheus rejected {expr}: {body[:300]}")
            elif not json.loads(body)["data"]["result"]:
                empty.append(f"{p['title']}: {expr}")
    print(f"ok: prometheus accepted {n} dashboard queries ({n - len(empty)} with data now)")
    for e in empty:
        print(f"  no data yet (fine for a short run): {e}")
    s, body = http("GET", f"{prom}/api/v1/alerts")
    if s == 200:
        firing = sorted({al["labels"]["alertname"] + ":" + al["state"] for al in json.loads(body)["data"]["alerts"]})
        print(f"alerts pending/firing now: {firing or 'none'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
