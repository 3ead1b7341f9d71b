"""Renders the chart with Helm's own engine (Helm's Go SDK, through the
helm-python-sdk wheel) for the chart tests.

usage: helm_render.py CHART_DIR VALUES_JSON
prints {"manifests": {path: yaml}, "crds": [file names], "lint": [messages]}
or, when Helm refuses the values or a template, {"error": message} (exit 3).
"""
import json
import sys

import helm_python as helm

chart_dir, values = sys.argv[1], json.loads(sys.argv[2])
try:
    with helm.Chart.load(chart_dir) as chart:
        chart.validate_schema(values)
        manifests = chart.render(values, name="entente", namespace="entente-system", is_install=True)
        crds = sorted(c["filename"] for c in chart.crds)
    report = helm.lint(chart_dir, values, strict=True, namespace="entente-system", kube_version="v1.32.0")
except helm.HelmError as e:  # values rejected by the schema, or a template failed
    print(json.dumps({"error": str(e)}))
    sys.exit(3)
lint = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2] + [
    {"error": e} for e in report.get("errors", [])
]
print(json.dumps({"manifests": manifests, "crds": crds, "lint": lint}))
