#!/usr/bin/env python3
"""Offline validation of everything ebb ships for a cluster.

- deploy/*.yaml and deploy/examples/*.yaml against the upstream Kubernetes schemas
  (kubernetes-validate, strict: unknown fields are errors);
- every TrainingJob / TrainingQueue there against the openAPIV3Schema of crds/ebb.dev.yaml;
- every file in tests/data/kube/invalid/ must be refused by that schema at the field its
  `# expect:` line names (CEL rules are checked by `cargo test --test crds` instead).
"""
import glob
import json
import os
import sys

import jsonschema
import kubernetes_validate
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K8S_VERSION = "1.34.0"
OURS = {"TrainingJob", "TrainingQueue"}


def documents(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def crd_schemas():
    schemas = {}
    for crd in documents(os.path.join(ROOT, "crds", "ebb.dev.yaml")):
        kind = crd["spec"]["names"]["kind"]
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        schemas[kind] = schema
    return schemas


def schema_errors(schemas, doc):
    validator = jsonschema.Draft4Validator(schemas[doc["kind"]])
    errors = []
    for e in validator.iter_errors(doc):
        path = [str(p) for p in e.absolute_path]
        if e.validator == "required":
            path.append(e.message.split("'")[1])  # name the missing field itself
        errors.append(".".join(path) + ": " + e.message)
    return errors


def policy_errors(doc):
    """What the schemas allow but ebb's deployment promises not to do."""
    errors = []
    for rule in doc.get("rules") or []:
        for key in ("apiGroups", "resources", "verbs"):
            if "*" in rule.get(key, []):
                errors.append(f"rules: wildcard in {key} (least privilege)")
    if doc.get("kind") == "Deployment" and doc["metadata"]["name"] == "ebb-controller":
        spec = doc["spec"]["template"]["spec"]
        if doc["spec"].get("replicas", 1) < 2:
            errors.append("spec.replicas: run two replicas (leader election)")
        if not spec.get("securityContext", {}).get("runAsNonRoot"):
            errors.append("securityContext.runAsNonRoot must be true")
        for c in spec["containers"]:
            sc = c.get("securityContext", {})
            if not sc.get("readOnlyRootFilesystem"):
                errors.append(f"container {c['name']}: readOnlyRootFilesystem must be true")
            if sc.get("allowPrivilegeEscalation", True):
                errors.append(f"container {c['name']}: allowPrivilegeEscalation must be false")
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in c:
                    errors.append(f"container {c['name']}: {probe} missing")
            if not c.get("resources", {}).get("requests"):
                errors.append(f"container {c['name']}: resource requests missing")
    return errors


def kustomize_errors():
    """An offline `kubectl kustomize`: each kustomization's files exist and parse, deploy/'s
    lists every manifest beside it, and the monitoring one selects the controller's pods
    on a port the controller declares."""
    errors = []
    deploy = os.path.join(ROOT, "deploy")
    main = documents(os.path.join(deploy, "kustomization.yaml"))[0]
    listed = set(main.get("resources", []))
    present = {os.path.basename(p) for p in glob.glob(os.path.join(deploy, "*.yaml"))}
    present.discard("kustomization.yaml")
    for missing in sorted(present - listed):
        errors.append(f"deploy/kustomization.yaml: {missing} is not listed")
    for extra in sorted(listed - present):
        errors.append(f"deploy/kustomization.yaml: {extra} does not exist")
    controller = next(
        d for p in sorted(present) for d in documents(os.path.join(deploy, p))
        if d.get("kind") == "Deployment" and d["metadata"]["name"] == "ebb-controller"
    )
    pod_labels = controller["spec"]["template"]["metadata"]["labels"]
    ports = {p["name"] for c in controller["spec"]["template"]["spec"]["containers"]
             for p in c.get("ports", [])}
    monitoring = os.path.join(deploy, "monitoring")
    mk = documents(os.path.join(monitoring, "kustomization.yaml"))[0]
    for res in mk.get("resources", []):
        for doc in documents(os.path.join(monitoring, res)):
            if doc.get("kind") != "PodMonitor":
                continue
            wanted = doc["spec"]["selector"]["matchLabels"]
            if any(pod_labels.get(k) != v for k, v in wanted.items()):
                errors.append(f"monitoring/{res}: selector {wanted} misses the controller's pods {pod_labels}")
            for ep in doc["spec"]["podMetricsEndpoints"]:
                if ep["port"] not in ports:
                    errors.append(f"monitoring/{res}: port {ep['port']} is not a controller port {ports}")
    for gen in mk.get("configMapGenerator", []):
        for f in gen.get("files", []):
            path = os.path.join(monitoring, f)
            try:
                with open(path) as fh:
                    json.load(fh)
            except (OSError, ValueError) as e:
                errors.append(f"monitoring/{f}: {e}")
    return errors


def main():
    schemas = crd_schemas()
    failures = kustomize_errors()
    checked = 0
    files = sorted(glob.glob(os.path.join(ROOT, "deploy", "*.yaml")))
    files.remove(os.path.join(ROOT, "deploy", "kustomization.yaml"))
    files += sorted(glob.glob(os.path.join(ROOT, "deploy", "examples", "*.yaml")))
    for path in files:
        rel = os.path.relpath(path, ROOT)
        for doc in documents(path):
            checked += 1
            name = f"{rel}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            if doc.get("kind") in OURS:
                errors = schema_errors(schemas, doc)
            else:
                try:
                    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
                    errors = []
                except kubernetes_validate.ValidationError as e:
                    errors = [f"{'.'.join(str(p) for p in e.path)}: {e.message}"]
                except Exception as e:  # unknown kind or version
                    errors = [str(e)]
            errors += policy_errors(doc)
            for err in errors:
                failures.append(f"{name}: {err}")
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "data", "kube", "invalid", "*.yaml"))):
        rel = os.path.relpath(path, ROOT)
        with open(path) as f:
            expect = f.readline().removeprefix("# expect:").strip()
        if not expect.startswith("spec."):
            continue  # a CEL rule: tests/crds.rs evaluates it
        checked += 1
        errors = [e for doc in documents(path) for e in schema_errors(schemas, doc)]
        if not any(e.startswith(expect) for e in errors):
            failures.append(f"{rel}: expected a schema error at {expect}, got {errors}")
    for f in failures:
        print("INVALID", f)
    print(f"validated {checked} manifests, {len(failures)} problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
