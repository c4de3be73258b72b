#!/usr/bin/env python3
"""Static checks of deploy/ that promtool cannot do; called by scripts/check-deploy.

- the Grafana dashboard parses, is Grafana 10+ (schemaVersion >= 38), uses the templated Prometheus datasource,
  and every PromQL expression in it (and in the alert rules) names only the metrics fixed in DESIGN.md
  ("Metrics") plus up and process_*;
- writes every dashboard expression into a rules file (argv[1]) so that promtool checks their syntax;
- compose.yml and the Kubernetes manifests parse and carry the fields the deployment relies on.
Prints one line per problem and exits 1 when there is any.
"""
import json
import os
import re
import sys

try:
    import yaml
except ImportError:
    print("python3 yaml module missing: apt-get install -y python3-yaml (or pip install pyyaml)")
    sys.exit(1)

DEPLOY = "deploy"
problems = []


def problem(msg):
    problems.append(msg)
    print(f"FAIL: {msg}")


# ---- the metric names of DESIGN.md ("Metrics"); histograms expose _bucket, _sum, _count ------------------
COUNTERS_GAUGES = {
    "wgate_http_requests_total", "wgate_auth_failures_total", "wgate_rate_limited_total",
    "wgate_jobs_enqueued_total", "wgate_redis_errors_total",
    "wgate_jobs_finished_total", "wgate_upstream_requests_total", "wgate_queue_jobs", "wgate_worker_busy",
    "wgate_queue_dead_letters",
    "wgate_build_info", "up",
}
HISTOGRAMS = {
    "wgate_http_request_duration_seconds", "wgate_sync_wait_seconds", "wgate_job_attempt_duration_seconds",
    "wgate_job_latency_seconds", "wgate_upstream_request_duration_seconds",
}
ALLOWED = set(COUNTERS_GAUGES)
for h in HISTOGRAMS:
    ALLOWED |= {h + "_bucket", h + "_sum", h + "_count"}
PROCESS = re.compile(r"^process_[a-z_]+$")

KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "inf", "nan", "atan2",
}


def metric_names(expr):
    """Metric names in a PromQL expression: identifiers that are not functions, keywords or label names."""
    e = re.sub(r"\$__\w+|\$\{\w+\}|\$\w+", "5m", expr)  # Grafana variables
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', e)  # strings
    e = re.sub(r"\{[^{}]*\}", " ", e)  # label matchers
    e = re.sub(r"\[[^\[\]]*\]", " ", e)  # ranges and subqueries
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", e)  # label lists
    e = re.sub(r"(?<![\w:])(\d+(ms|[smhdwy]))+(?![\w:])", " ", e)  # durations (offset 5m)
    e = re.sub(r"(?<![\w:])\d+(\.\d+)?([eE][+-]?\d+)?(?![\w:])", " ", e)  # numbers
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        tail = e[m.end():].lstrip()
        if tail.startswith("("):  # a function or aggregation
            continue
        if m.group(0).lower() in KEYWORDS:
            continue
        names.add(m.group(0))
    return names


def check_names(where, expr):
    for n in sorted(metric_names(expr)):
        if n not in ALLOWED and not PROCESS.match(n):
            problem(f"{where}: metric {n!r} is not in DESIGN.md's list: {expr}")


# ---- Grafana dashboard -------------------------------------------------------------------------------------
def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


def check_dashboard(path, rules_out):
    try:
        with open(path) as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        problem(f"{path}: {e}")
        return
    if dash.get("schemaVersion", 0) < 38:
        problem(f"{path}: schemaVersion {dash.get('schemaVersion')} < 38 (Grafana 10+)")
    tvars = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds = tvars.get("DS_PROMETHEUS")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problem(f"{path}: no templating variable DS_PROMETHEUS of type datasource/prometheus")
    exprs = []
    ids = set()
    for p in walk_panels(dash.get("panels", [])):
        if p.get("id") in ids:
            problem(f"{path}: duplicate panel id {p.get('id')}")
        ids.add(p.get("id"))
        if p.get("type") == "row":
            continue
        title = p.get("title", "?")
        targets = p.get("targets", [])
        if not targets:
            problem(f"{path}: panel {title!r} has no queries")
        for dsref in [p.get("datasource")] + [t.get("datasource") for t in targets]:
            if not dsref or dsref.get("uid") != "${DS_PROMETHEUS}":
                problem(f"{path}: panel {title!r} does not use the ${{DS_PROMETHEUS}} datasource")
                break
        for t in targets:
            expr = t.get("expr", "")
            if not expr.strip():
                problem(f"{path}: panel {title!r} target {t.get('refId')} has no expr")
                continue
            check_names(f"{path}: panel {title!r}", expr)
            exprs.append((title, expr))
    # promtool checks the syntax of these (scripts/check-deploy): one recording rule per expression.
    rules = [{"record": f"dashboard:expr_{i}", "expr": re.sub(r"\$__rate_interval|\$__interval|\$__range", "5m", e)}
             for i, (_, e) in enumerate(exprs)]
    with open(rules_out, "w") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard-exprs", "rules": rules}]}, f, sort_keys=False)
    print(f"ok: {path}: {len(ids)} panels, {len(exprs)} queries, metric names all from DESIGN.md")


def check_alert_names(path):
    with open(path) as f:
        doc = yaml.safe_load(f)
    n = 0
    for g in doc.get("groups", []):
        for r in g.get("rules", []):
            check_names(f"{path}: {r.get('alert') or r.get('record')}", r.get("expr", ""))
            ann = r.get("annotations", {})
            if r.get("alert"):
                for k in ("summary", "description", "runbook"):
                    if not ann.get(k):
                        problem(f"{path}: alert {r['alert']} has no {k} annotation")
            n += 1
    print(f"ok: {path}: {n} rules, metric names all from DESIGN.md, annotations present")


# ---- compose -------------------------------------------------------------------------------------------------
SECRET_VARS = ("WGATE_JWT_SECRET", "WGATE_UPSTREAM_API_KEY")


def check_compose(path):
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        problem(f"{path}: {e}")
        return
    services = doc.get("services", {})
    for s in ("redis", "api", "worker", "sim", "prometheus", "grafana"):
        if s not in services:
            problem(f"{path}: no service {s}")
    if "sim" in services and "sim" not in services["sim"].get("profiles", []):
        problem(f"{path}: service sim is not in profile sim")
    redis = services.get("redis", {})
    if "appendonly" not in " ".join(map(str, redis.get("command", []))):
        problem(f"{path}: redis does not run with appendonly yes")
    for name, svc in services.items():
        env = svc.get("environment", {})
        items = env.items() if isinstance(env, dict) else (x.split("=", 1) + [""] for x in env)
        for kv in items:
            k, v = kv[0], kv[1]
            if k in SECRET_VARS and v:
                problem(f"{path}: service {name} sets {k} inline; use env_file or secrets")
        build = svc.get("build")
        if build:
            ctx = os.path.normpath(os.path.join(os.path.dirname(path), build.get("context", ".")))
            df = os.path.join(ctx, build.get("dockerfile", "Dockerfile"))
            if not os.path.exists(df):
                problem(f"{path}: service {name} builds from missing {df}")
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
            if src.startswith("."):
                full = os.path.normpath(os.path.join(os.path.dirname(path), src))
                if not os.path.exists(full):
                    problem(f"{path}: service {name} mounts missing {full}")
    print(f"ok: {path}: {len(services)} services parse")


# ---- Kubernetes ----------------------------------------------------------------------------------------------
def check_k8s(dirpath):
    kust_path = os.path.join(dirpath, "kustomization.yaml")
    try:
        with open(kust_path) as f:
            kust = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        problem(f"{kust_path}: {e}")
        return
    docs = []
    for res in kust.get("resources", []):
        p = os.path.join(dirpath, res)
        try:
            with open(p) as f:
                docs += [(p, d) for d in yaml.safe_load_all(f) if d]
        except (OSError, yaml.YAMLError) as e:
            problem(f"{p}: {e}")
    for gen in kust.get("configMapGenerator", []) + kust.get("secretGenerator", []):
        for fl in gen.get("files", []) + gen.get("envs", []):
            fl = fl.split("=", 1)[-1]
            full = os.path.join(dirpath, fl)
            if not os.path.exists(full) and not os.path.exists(full + ".example"):
                problem(f"{kust_path}: generator {gen.get('name')} file {fl} missing (and no {fl}.example)")
    kinds = {}
    for p, d in docs:
        for k in ("apiVersion", "kind", "metadata"):
            if k not in d:
                problem(f"{p}: a document has no {k}")
        name = d.get("metadata", {}).get("name")
        if not name:
            problem(f"{p}: {d.get('kind')} without metadata.name")
        kinds.setdefault(d.get("kind"), {})[name] = d
    for want in ("Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "ServiceMonitor"):
        if len(kinds.get(want, {})) < 2:
            problem(f"{dirpath}: want a {want} for both api and worker, found {sorted(kinds.get(want, {}))}")
    for name, dep in kinds.get("Deployment", {}).items():
        spec = dep.get("spec", {}).get("template", {}).get("spec", {})
        sel = dep.get("spec", {}).get("selector", {}).get("matchLabels", {})
        labels = dep.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
        if not sel or any(labels.get(k) != v for k, v in sel.items()):
            problem(f"Deployment {name}: selector {sel} does not match template labels {labels}")
        for c in spec.get("containers", []):
            for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
                got = c.get(probe, {}).get("httpGet", {}).get("path")
                if got != path:
                    problem(f"Deployment {name}: {probe} path {got}, want {path}")
            if not c.get("resources", {}).get("requests") or not c.get("resources", {}).get("limits"):
                problem(f"Deployment {name}: container {c.get('name')} without resource requests and limits")
            refs = {e.get("name"): e.get("valueFrom", {}) for e in c.get("env", [])}
            for s in SECRET_VARS:
                if s in refs and "secretKeyRef" not in refs[s]:
                    problem(f"Deployment {name}: {s} not from a Secret")
            if not c.get("envFrom"):
                problem(f"Deployment {name}: no envFrom ConfigMap")
        if "worker" in name and spec.get("terminationGracePeriodSeconds", 30) < 30:
            problem(f"Deployment {name}: terminationGracePeriodSeconds < 30")
    services = kinds.get("Service", {})
    for name, sm in kinds.get("ServiceMonitor", {}).items():
        spec = sm.get("spec", {})
        sel = spec.get("selector", {}).get("matchLabels", {})
        matched = [s for s in services.values()
                   if sel and all(s.get("metadata", {}).get("labels", {}).get(k) == v for k, v in sel.items())]
        if not matched:
            problem(f"ServiceMonitor {name}: selector {sel} matches no Service")
            continue
        svc_ports = {p.get("name") for s in matched for p in s.get("spec", {}).get("ports", [])}
        for ep in spec.get("endpoints", []):
            if ep.get("port") not in svc_ports:
                problem(f"ServiceMonitor {name}: endpoint port {ep.get('port')!r} not among {sorted(svc_ports)}")
        job = matched[0].get("metadata", {}).get("labels", {}).get(spec.get("jobLabel", ""), "")
        if job not in ("wgate-api", "wgate-worker"):
            problem(f"ServiceMonitor {name}: jobLabel gives job={job!r}; the alert rules expect wgate-api/wgate-worker")
    print(f"ok: {dirpath}: {len(docs)} documents parse; kinds {sorted(k for k in kinds if k)}")


if __name__ == "__main__":
    rules_out = sys.argv[1]
    check_dashboard(os.path.join(DEPLOY, "grafana", "wgate.json"), rules_out)
    check_alert_names(os.path.join(DEPLOY, "prometheus", "alerts.yml"))
    for p in ("grafana/provisioning/datasources/prometheus.yml", "grafana/provisioning/dashboards/wgate.yml"):
        try:
            with open(os.path.join(DEPLOY, p)) as f:
                yaml.safe_load(f)
        except (OSError, yaml.YAMLError) as e:
            problem(f"{DEPLOY}/{p}: {e}")
    check_compose(os.path.join(DEPLOY, "compose.yml"))
    check_k8s(os.path.join(DEPLOY, "k8s"))
    sys.exit(1 if problems else 0)
