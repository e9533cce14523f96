#!/usr/bin/env python3
"""Writes the Kubernetes API schema of the kinds the K8s templates use, vendored under
tests/k8s_schema/ (README.md there says where it comes from). Reads the OpenAPI (Swagger 2.0)
spec of one Kubernetes version, keeps the definitions of KINDS and every definition they
reference, without their descriptions, and writes them as one JSON file, unmodified otherwise
(tests/cluster_templates_test.py makes them strict when it validates).

Usage: k8s_schema_subset.py SWAGGER_JSON[.gz] OUT_JSON
  e.g. npm pack kubernetes-client@9.0.0 && tar xzf kubernetes-client-9.0.0.tgz &&
       scripts/k8s_schema_subset.py package/lib/specs/swagger-1.13.json.gz \\
           tests/k8s_schema/kubernetes-1.13.4.json"""
import gzip
import json
import sys

# apiVersion, kind: those of experiments/cluster/k8s/*.yaml, and the ConfigMaps and Secrets
# their comments tell the user to create.
KINDS = [("apps", "v1", "Deployment"), ("apps", "v1", "DaemonSet"), ("", "v1", "Service"),
         ("", "v1", "PersistentVolumeClaim"), ("", "v1", "ConfigMap"), ("", "v1", "Secret")]


def strip(node):
    if isinstance(node, dict):
        # A property named "description" is a dict; the text beside a schema is a string.
        return {k: strip(v) for k, v in node.items()
                if not (k == "description" and isinstance(v, str))}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def refs(node, out):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            out.add(node["$ref"].rsplit("/", 1)[-1])
        for v in node.values():
            refs(v, out)
    elif isinstance(node, list):
        for v in node:
            refs(v, out)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    opener = gzip.open if src.endswith(".gz") else open
    with opener(src, "rt") as f:
        spec = json.load(f)
    defs = spec["definitions"]
    roots = []
    for group, version, kind in KINDS:
        found = [name for name, d in defs.items()
                 if {"group": group, "version": version, "kind": kind}
                 in d.get("x-kubernetes-group-version-kind", [])]
        if len(found) != 1:
            sys.exit(f"{src}: {len(found)} definitions of {group or 'core'}/{version} {kind}")
        roots.append(found[0])
    keep, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        more = set()
        refs(defs[name], more)
        todo.extend(more - keep)
    # One definition a line: a diff after a regeneration shows which definitions changed.
    lines = [f'{{"info": {json.dumps(spec["info"], sort_keys=True)},',
             f' "roots": {json.dumps(roots)},', ' "definitions": {']
    lines += [f"  {json.dumps(name)}: {json.dumps(strip(defs[name]), sort_keys=True)},"
              for name in sorted(keep)]
    lines[-1] = lines[-1].rstrip(",")
    lines.append("}}")
    with open(dst, "w") as f:
        f.write("\n".join(lines) + "\n")
    json.loads("\n".join(lines))  # what was written parses
    print(f"{dst}: {len(keep)} definitions of Kubernetes {spec['info']['version']}")


if __name__ == "__main__":
    main()
