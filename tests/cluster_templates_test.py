#!/usr/bin/env python3
"""The cluster templates use keys (issue 12): Slurm and systemd pass --key and
--scheduler-key; on K8s the scheduler has --key, --agent-keys and --submitter-keys, secret
volumes are read-only with mode 0400, and the scheduler's Service stays inside the cluster
(ClusterIP). Each template says how keys are made (hpo keys new). The checks run on the
real templates, then on broken copies, which must be refused (so the test can fail).

Usage: cluster_templates_test.py REPO_ROOT"""
import copy
import sys
from pathlib import Path

try:
    import yaml
except ImportError:
    sys.exit("FAIL: PyYAML is missing (apt-get install python3-yaml; scripts/setup.sh test does)")


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
    errors += check_k8s(list(yaml.safe_load_all(sched)),
                        list(yaml.safe_load_all((cluster / "k8s" / "agents.yaml").read_text())))
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
    failed |= must_fail("a unit without --scheduler-key",
                        check_text("x", "hpo keys new ... --key a", ["--key ", "--scheduler-key "]))
    if not failed:
        print("ok: templates use keys; broken copies are refused")
    return failed


if __name__ == "__main__":
    sys.exit(main())
