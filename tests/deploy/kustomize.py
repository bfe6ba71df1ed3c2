"""A small kustomize in Python: the subset deploy/k8s/ uses, so its rendering is tested on
machines without kubectl. Where kubectl is installed, the tests compare both renderings.

Supported fields: resources (files and directories with a kustomization.yaml), namespace,
images (newName, newTag), replicas, and patches given by path (strategic merge: maps merge,
lists of named items merge by name, other lists are replaced). Any other field is refused,
so a kustomization that grows past this subset fails the tests instead of rendering wrong.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]
SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "images", "replicas", "patches"}
# Kinds that live outside any namespace (the ones a kustomization here could hold).
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume"}
WORKLOADS = {"Deployment", "StatefulSet", "Job", "CronJob", "DaemonSet"}


class Unsupported(Exception):
    pass


def render(directory: Path) -> list[Resource]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - SUPPORTED
    if unknown:
        raise Unsupported(f"{directory}: fields this renderer does not know: {sorted(unknown)}")
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            resources += render(path)
        else:
            resources += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for patch in kustomization.get("patches", []):
        if set(patch) != {"path"}:
            raise Unsupported(f"{directory}: only patches by path are supported: {patch}")
        _apply_patch(resources, yaml.safe_load((directory / patch["path"]).read_text()))
    for rule in kustomization.get("replicas", []):
        _find(resources, "Deployment", rule["name"])["spec"]["replicas"] = rule["count"]
    for image in kustomization.get("images", []):
        _set_image(resources, image)
    namespace = kustomization.get("namespace")
    if namespace:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource["metadata"]["namespace"] = namespace
    return resources


def _find(resources: list[Resource], kind: str, name: str) -> Resource:
    for resource in resources:
        if resource["kind"] == kind and resource["metadata"]["name"] == name:
            return resource
    raise Unsupported(f"no {kind} named {name} to change")


def _apply_patch(resources: list[Resource], patch: Resource) -> None:
    target = _find(resources, patch["kind"], patch["metadata"]["name"])
    merged = _merge(target, patch)
    target.clear()
    target.update(merged)


def _merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(base)
        for key, value in patch.items():
            merged[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(patch, list) and _named(base) and _named(patch):
        items = copy.deepcopy(base)
        for item in patch:
            index = next((i for i, old in enumerate(items) if old["name"] == item["name"]), None)
            if index is None:
                items.append(copy.deepcopy(item))
            else:
                items[index] = _merge(items[index], item)
        return items
    return copy.deepcopy(patch)


def _named(items: list[Any]) -> bool:
    return all(isinstance(item, dict) and "name" in item for item in items)


def _set_image(resources: list[Resource], rule: dict[str, str]) -> None:
    for resource in resources:
        if resource["kind"] not in WORKLOADS:
            continue
        for container in containers(resource):
            name, _, _ = container["image"].partition(":")
            if name == rule["name"]:
                tag = rule.get("newTag", container["image"].partition(":")[2])
                container["image"] = f"{rule.get('newName', name)}:{tag}"


def containers(resource: Resource) -> list[dict[str, Any]]:
    spec = resource["spec"]
    if resource["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod = spec["template"]["spec"]
    return [*pod.get("initContainers", []), *pod["containers"]]
