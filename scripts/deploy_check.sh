#!/usr/bin/env bash
# `make deploy-check`: validates the Helm chart, Terraform, Dockerfile, alert rules and
# dashboards offline, with the tools scripts/deploy_tools.sh installs under .tools/.
# Fails on the first problem; prints the time each step took.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deploy_tools.sh
export PATH="$PWD/.tools/bin:$PWD/.tools/venv/bin:$PATH"
PYTHON=${PYTHON:-.venv/bin/python}
CHART=charts/churnwire
RULES=$CHART/files/prometheus/churnwire-rules.yaml
K8S_VERSION=1.30
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step() {
  local name=$1 started=$SECONDS
  shift
  printf 'deploy-check: %s\n' "$name" >&2
  "$@"
  printf 'deploy-check: %s ok (%d s)\n' "$name" $((SECONDS - started)) >&2
}

render() {  # render NAME [helm args...]: template the chart into $work/NAME.yaml
  local name=$1
  shift
  helm template churnwire "$CHART" --namespace churnwire "$@" > "$work/$name.yaml"
}

helm_checks() {
  helm lint --strict "$CHART"
  helm lint --strict "$CHART" -f "$CHART/values-production.yaml"
  render default
  render production -f "$CHART/values-production.yaml"
  render kafka-connect -f "$CHART/values-production.yaml" --set cdc.mode=kafkaConnect
  render terraform-dev -f terraform/environments/dev-values.yaml
  local rendered
  for rendered in default production kafka-connect terraform-dev; do
    # Custom resources (ServiceMonitor, PrometheusRule, ExternalSecret) have no schema here:
    # kubernetes-validate warns and skips them; their content is checked below.
    kubernetes-validate --strict --quiet -k "$K8S_VERSION" "$work/$rendered.yaml"
  done
}

prometheus_rule_in_chart() {
  # The PrometheusRule the chart renders must hold exactly the checked rules file.
  "$PYTHON" - "$work/production.yaml" "$RULES" "$work/rendered-rules.yaml" <<'PY'
import sys
import yaml
rendered, source, out = sys.argv[1:]
documents = [d for d in yaml.safe_load_all(open(rendered)) if d]
rules = [d for d in documents if d.get("kind") == "PrometheusRule"]
assert len(rules) == 1, f"expected one PrometheusRule, found {len(rules)}"
assert rules[0]["spec"] == yaml.safe_load(open(source)), "PrometheusRule differs from the rules file"
yaml.safe_dump(rules[0]["spec"], open(out, "w"))
dashboards = [d for d in documents if d.get("kind") == "ConfigMap" and "-dashboard-" in d["metadata"]["name"]]
assert len(dashboards) == 5, f"expected 5 dashboard ConfigMaps, found {len(dashboards)}"
PY
  promtool check rules "$work/rendered-rules.yaml" >/dev/null
}

checkov_checks() {
  # Each skipped check is justified where it is skipped (checkov:skip comments, .checkov.yaml).
  checkov --quiet --compact --skip-download --config-file .checkov.yaml \
    --framework helm -d "$CHART" --var-file "$CHART/values-production.yaml"
  checkov --quiet --compact --skip-download --config-file .checkov.yaml \
    --framework terraform -d terraform
  checkov --quiet --compact --skip-download --config-file .checkov.yaml \
    --framework dockerfile -f Dockerfile
}

terraform_variables() {
  # Without the provider registry `terraform validate` cannot run; this catches what it
  # would for the variable files: unknown or missing variables, undocumented ones, and a
  # chart values file that does not exist.
  .tools/venv/bin/python - terraform <<'PY'
import sys
from pathlib import Path
import hcl2
folder = Path(sys.argv[1])
declared = {}
for path in folder.glob("*.tf"):
    for block in hcl2.load(path.open()).get("variable", []):
        declared.update(block)
problems = [f"variable {name} has no description" for name, body in declared.items()
            if not body.get("description")]
required = {name for name, body in declared.items() if "default" not in body}
for tfvars in sorted((folder / "environments").glob("*.tfvars")):
    values = hcl2.load(tfvars.open())
    problems += [f"{tfvars}: unknown variable {name}" for name in values if name not in declared]
    problems += [f"{tfvars}: required variable {name} not set" for name in required - set(values)]
    chart_values = values.get("chart_values_file", [None])[0]
    if chart_values and not (folder / chart_values).is_file():
        problems.append(f"{tfvars}: chart_values_file {chart_values} does not exist")
if problems:
    sys.exit("\n".join(problems))
print(f"{len(declared)} variables, all described; variable files consistent")
PY
}

panel_queries() {
  # Every dashboard query, as a recording rule, through promtool's parser.
  "$PYTHON" -m churnwire.deploy.dashboards --check
  "$PYTHON" - "$work/panels.yaml" <<'PY'
import json, sys
from churnwire.deploy.dashboards import panel_expressions
from churnwire.deploy.metrics import as_promql
rules = [{"record": f"churnwire_panel:query_{index}", "expr": as_promql(expr)}
         for index, (_uid, _title, expr) in enumerate(panel_expressions())]
json.dump({"groups": [{"name": "dashboard-panels", "rules": rules}]}, open(sys.argv[1], "w"))
PY
  promtool check rules "$work/panels.yaml"
}

started=$SECONDS
step "helm lint, template, kubernetes-validate" helm_checks
step "PrometheusRule and dashboards in the chart" prometheus_rule_in_chart
step "hadolint Dockerfile" hadolint Dockerfile
step "terraform fmt -check" terraform fmt -check -recursive -diff terraform
step "terraform variable files" terraform_variables
step "promtool check rules" promtool check rules "$RULES"
step "promtool test rules" promtool test rules monitoring/rules-test.yaml
step "dashboard queries" panel_queries
step "checkov (chart, terraform, Dockerfile)" checkov_checks
printf 'deploy-check: all passed in %d s\n' $((SECONDS - started)) >&2
