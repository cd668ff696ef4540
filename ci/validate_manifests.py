#!/usr/bin/env python3
"""Offline validation of everything ebb ships for a cluster.

- deploy/*.yaml and deploy/examples/*.yaml against the upstream Kubernetes schemas
  (kubernetes-validate, strict: unknown fields are errors);
- every TrainingJob / TrainingQueue there against the openAPIV3Schema of crds/ebb.dev.yaml;
- every file in tests/data/kube/invalid/ must be refused by that schema at the field its
  `# expect:` line names (CEL rules are checked by `cargo test --test crds` instead).
"""
import glob
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


def main():
    schemas = crd_schemas()
    failures = []
    checked = 0
    files = sorted(glob.glob(os.path.join(ROOT, "deploy", "*.yaml")))
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
