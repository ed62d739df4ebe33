"""Reads the PromQL of deploy/: every alert expression of the PrometheusRule in monitoring.yaml
and every panel query of grafana-dashboard.json, parses each with promql-parser (a PromQL parser,
not a pattern) and prints JSON: [{"where", "expr", "metrics": [names it selects]}]. Also writes
the PrometheusRule's spec (a Prometheus rules file) to the path given third.
Usage: queries.py monitoring.yaml grafana-dashboard.json rules-out.yaml"""
import json
import sys

import promql_parser
import yaml

monitoring, dashboard, rules_out = sys.argv[1:4]


def metric_names(node, found):
    if isinstance(node, promql_parser.VectorSelector):
        if node.name:
            found.add(node.name)
        else:
            for m in node.matchers.matchers:
                if m.name == "__name__":
                    found.add(m.value)
        return found
    for attr in ("lhs", "rhs", "expr", "param", "vector_selector"):
        child = getattr(node, attr, None)
        if child is not None and not isinstance(child, (str, int, float)):
            metric_names(child, found)
    for child in getattr(node, "args", None) or []:
        metric_names(child, found)
    return found


queries = []
rules = None
with open(monitoring) as f:
    for doc in yaml.safe_load_all(f):
        if doc and doc.get("kind") == "PrometheusRule":
            rules = doc["spec"]
            for group in rules["groups"]:
                for rule in group["rules"]:
                    name = rule.get("alert") or rule.get("record")
                    queries.append((f"alert {name}", rule["expr"]))
if rules is None:
    sys.exit(f"{monitoring} has no PrometheusRule")
with open(rules_out, "w") as f:
    yaml.safe_dump(rules, f)

with open(dashboard) as f:
    dash = json.load(f)
for panel in dash["panels"]:
    for target in panel.get("targets", []):
        queries.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))

out = []
for where, expr in queries:
    try:
        parsed = promql_parser.parse(expr)
    except Exception as e:  # noqa: BLE001: the parser's own message says what is wrong
        sys.exit(f"{where}: {expr!r} does not parse: {e}")
    out.append({"where": where, "expr": expr, "metrics": sorted(metric_names(parsed, set()))})
json.dump(out, sys.stdout)

# The ServiceMonitor scrapes a Service of kubernetes.yaml that exists, on a port it has.
import os  # noqa: E402

with open(os.path.join(os.path.dirname(monitoring), "kubernetes.yaml")) as f:
    services = [d for d in yaml.safe_load_all(f) if d and d.get("kind") == "Service"]
with open(monitoring) as f:
    for doc in yaml.safe_load_all(f):
        if doc and doc.get("kind") == "ServiceMonitor":
            wanted = doc["spec"]["selector"]["matchLabels"]
            chosen = [
                s for s in services
                if all(s["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
            ]
            if len(chosen) != 1:
                sys.exit(f"the ServiceMonitor selects {len(chosen)} Services, not one")
            ports = {p["name"] for p in chosen[0]["spec"]["ports"]}
            for endpoint in doc["spec"]["endpoints"]:
                if endpoint["port"] not in ports:
                    sys.exit(f"the ServiceMonitor scrapes port {endpoint['port']!r}, which its Service lacks")
