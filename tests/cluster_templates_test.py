#!/usr/bin/env python3
"""The cluster templates use keys (issue 12): Slurm and systemd pass --key and
--scheduler-key; on K8s the scheduler has --key, --agent-keys and --submitter-keys, secret
volumes are read-only with mode 0400, and the scheduler's Service stays inside the cluster
(ClusterIP). Each template says how keys are made (hpo keys new). Every K8s document is
valid against the Kubernetes API schema of its kind (tests/k8s_schema: Kubernetes 1.13.4's
OpenAPI definitions, made strict: an unknown field is refused). The checks run on the real
templates, then on broken copies, which must be refused (so the test can fail).

Usage: cluster_templates_test.py REPO_ROOT"""
import copy
import json
import sys
from pathlib import Path

try:
    import yaml
except ImportError:
    sys.exit("FAIL: PyYAML is missing (apt-get install python3-yaml; scripts/setup.sh test does)")
try:
    import jsonschema
except ImportError:
    sys.exit("FAIL: jsonschema is missing (apt-get install python3-jsonschema; "
             "scripts/setup.sh test does)")


def check_k8s(scheduler_docs, agent_docs):
    errors = []
    for doc in scheduler_docs + agent_docs:
        if doc["kind"] == "Service":
            kind = doc["spec"].get("type", "ClusterIP")
            if kind != "ClusterIP":
                errors.append(f"Service {doc['metadata']['name']}: type {kind}, not ClusterIP")
            for port in doc["spec"].get("ports", []):
                if "nodePort" in port:
                    errors.append(f"Service {doc['metadata']['name']}: a nodePort")
        if doc["kind"] not in ("Deployment", "DaemonSet"):
            continue
        pod = doc["spec"]["template"]["spec"]
        secrets = {v["name"]: v["secret"] for v in pod.get("volumes", []) if "secret" in v}
        for name, secret in secrets.items():
            if secret.get("defaultMode") != 0o400:
                errors.append(f"{doc['kind']}: secret volume {name} is not defaultMode 0400")
        for c in pod["containers"]:
            for m in c.get("volumeMounts", []):
                if m["name"] in secrets and not m.get("readOnly"):
                    errors.append(f"{doc['kind']}: secret volume {m['name']} mounted writable")
            line = " ".join(c.get("command", []) + c.get("args", []))
            wanted = (["--key", "--agent-keys", "--submitter-keys"] if "scheduler" in line.split()
                      else ["--key", "--scheduler-key"])
            for flag in wanted:
                if flag + " " not in line and f'"{flag}"' not in line:
                    errors.append(f"{doc['kind']} {c['name']}: no {flag} in {line!r}")
        if not secrets:
            errors.append(f"{doc['kind']}: no key from a Secret")
    return errors


SCHEMA = "tests/k8s_schema/kubernetes-1.13.4.json"


def load_schema(root):
    """The vendored Kubernetes definitions (tests/k8s_schema/README.md), made strict:
    unknown fields refused; IntOrString and Quantity as the API server takes them."""
    spec = json.loads((root / SCHEMA).read_text())
    defs = spec["definitions"]
    for d in defs.values():
        if "properties" in d:  # the spec leaves out "type": "object" on every one
            d.setdefault("type", "object")
            d.setdefault("additionalProperties", False)
    defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = {
        "oneOf": [{"type": "string"}, {"type": "integer"}]}
    defs["io.k8s.apimachinery.pkg.api.resource.Quantity"] = {
        "oneOf": [{"type": "string"}, {"type": "number"}]}
    kinds = {}
    for name, d in defs.items():
        for gvk in d.get("x-kubernetes-group-version-kind", []):
            api = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
            kinds[(api, gvk["kind"])] = name
    return defs, kinds


def check_schema(schema, path, docs):
    """Each document against its kind's definition: one error per finding, with its place."""
    defs, kinds = schema
    errors = []
    for i, doc in enumerate(docs):
        where = f"{path} document {i + 1}"
        if not isinstance(doc, dict):
            errors.append(f"{where}: not a mapping")
            continue
        name = kinds.get((doc.get("apiVersion"), doc.get("kind")))
        if name is None:
            errors.append(f"{where}: no schema here for apiVersion {doc.get('apiVersion')!r} "
                          f"kind {doc.get('kind')!r}")
            continue
        validator = jsonschema.Draft4Validator(
            {"$ref": f"#/definitions/{name}", "definitions": defs})
        for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
            place = "/".join(str(p) for p in e.absolute_path) or "(top)"
            errors.append(f"{where} ({doc['kind']}): {place}: {e.message}")
    return errors


def check_text(path, text, flags):
    errors = [f"{path}: no {f}" for f in flags if f not in text]
    if "hpo keys new" not in text:
        errors.append(f"{path}: does not say how keys are made (hpo keys new)")
    return errors


def check(root):
    cluster = root / "experiments" / "cluster"
    errors = []
    for name in ("slurm-agents.sbatch", "hpo-agent.service"):
        errors += check_text(name, (cluster / name).read_text(), ["--key ", "--scheduler-key "])
    sched = (cluster / "k8s" / "scheduler.yaml").read_text()
    errors += check_text("k8s/scheduler.yaml", sched, ["--agent-keys", "--submitter-keys"])
    agents = (cluster / "k8s" / "agents.yaml").read_text()
    errors += check_k8s(list(yaml.safe_load_all(sched)), list(yaml.safe_load_all(agents)))
    schema = load_schema(root)
    for path in sorted((cluster / "k8s").glob("*.yaml")):
        docs = list(yaml.safe_load_all(path.read_text()))
        errors += check_schema(schema, f"k8s/{path.name}", docs)
    return errors


def must_fail(what, errors):
    if not errors:
        print(f"FAIL: the check accepted {what}")
        return 1
    return 0


def main():
    root = Path(sys.argv[1])
    errors = check(root)
    for e in errors:
        print("FAIL:", e)
    failed = 1 if errors else 0
    # The checks can fail: broken copies are refused.
    cluster = root / "experiments" / "cluster"
    sched = list(yaml.safe_load_all((cluster / "k8s" / "scheduler.yaml").read_text()))
    agents = list(yaml.safe_load_all((cluster / "k8s" / "agents.yaml").read_text()))
    for what, mutate in [
        ("a NodePort Service", lambda s, a: s[-1]["spec"].update(type="NodePort")),
        ("a LoadBalancer Service", lambda s, a: s[-1]["spec"].update(type="LoadBalancer")),
        ("a secret of mode 0444", lambda s, a: a[0]["spec"]["template"]["spec"]["volumes"][0]
         ["secret"].update(defaultMode=0o444)),
        ("a scheduler without --submitter-keys",
         lambda s, a: s[1]["spec"]["template"]["spec"]["containers"][0].update(
             command=["hpo", "scheduler", "--key", "k", "--agent-keys", "d"])),
    ]:
        s2, a2 = copy.deepcopy(sched), copy.deepcopy(agents)
        mutate(s2, a2)
        failed |= must_fail(what, check_k8s(s2, a2))
    # Against the Kubernetes schema: a misspelled field, a wrong type, a missing required
    # field and an unknown kind are refused, each naming its place.
    schema = load_schema(root)
    pod = lambda docs: docs[0]["spec"]["template"]["spec"]
    for what, mutate, place in [
        ("a misspelled field (replica)", lambda s, a: s[1]["spec"].update(replica=1),
         "document 2 (Deployment): spec: Additional properties are not allowed ('replica'"),
        ("a port number as text", lambda s, a: s[1]["spec"]["template"]["spec"]["containers"][0]
         ["ports"][0].update(containerPort="5555"),
         "spec/template/spec/containers/0/ports/0/containerPort: '5555' is not of type 'integer'"),
        ("a container without a name", lambda s, a: pod(a)["containers"][0].pop("name"),
         "spec/template/spec/containers/0: 'name' is a required property"),
        ("a misspelled volume source", lambda s, a: pod(a)["volumes"][0].update(
            secrets=pod(a)["volumes"][0].pop("secret")), "('secrets' was unexpected)"),
        ("a Service spec as a list", lambda s, a: s[-1].update(spec=[s[-1]["spec"]]),
         "document 3 (Service): spec: [{"),
        ("an unknown kind", lambda s, a: a[0].update(kind="DaemonSett"),
         "no schema here for apiVersion 'apps/v1' kind 'DaemonSett'"),
    ]:
        s2, a2 = copy.deepcopy(sched), copy.deepcopy(agents)
        mutate(s2, a2)
        errors = check_schema(schema, "s", s2) + check_schema(schema, "a", a2)
        failed |= must_fail(what, errors)
        if errors and not any(place in e for e in errors):
            print(f"FAIL: {what}: no error says {place!r}; they say {errors}")
            failed = 1
    failed |= must_fail("a unit without --scheduler-key",
                        check_text("x", "hpo keys new ... --key a", ["--key ", "--scheduler-key "]))
    if not failed:
        print("ok: templates use keys and pass the Kubernetes schema; broken copies are refused")
    return failed


if __name__ == "__main__":
    sys.exit(main())
