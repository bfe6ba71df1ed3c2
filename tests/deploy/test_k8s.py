"""deploy/k8s: every manifest parses, the production overlay renders (with the Python
renderer in tests/deploy/kustomize.py everywhere, and compared with `kubectl kustomize`
where kubectl is installed), and what it runs matches the Manager: env names are settings
that load as production, probes are routes it serves, ports are its listeners."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from opscaffold.manager.config import Settings, split_addr
from tests.deploy import kustomize
from tests.deploy.conftest import ROOT
from tests.deploy.helpers import GRPC_SERVICES, image_environment, load, setting_of

K8S = ROOT / "deploy/k8s"
OVERLAY = K8S / "overlays/production"
Resource = dict[str, Any]


def rendered() -> list[Resource]:
    return kustomize.render(OVERLAY)


def one(resources: list[Resource], kind: str, name: str) -> Resource:
    found = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def secret_example() -> list[Resource]:
    return list(yaml.safe_load_all((K8S / "base/secret.example.yaml").read_text()))


def test_every_manifest_parses() -> None:
    files = sorted(K8S.rglob("*.yaml"))
    assert len(files) >= 10
    for file in files:
        for document in yaml.safe_load_all(file.read_text()):
            assert isinstance(document, dict), file
            assert "kind" in document, file


@pytest.mark.timeout(30)
def test_kubectl_renders_what_the_python_renderer_does() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; the Python renderer alone is checked")
    result = subprocess.run(
        [kubectl, "kustomize", str(OVERLAY)], capture_output=True, text=True, timeout=25
    )
    assert result.returncode == 0, result.stderr

    def keyed(resources: list[Resource]) -> dict[tuple[str, str], Resource]:
        return {(r["kind"], r["metadata"]["name"]): r for r in resources}

    assert keyed([d for d in yaml.safe_load_all(result.stdout) if d]) == keyed(rendered())


def test_production_runs_two_probed_replicas_of_the_released_image(app_paths: set[str]) -> None:
    resources = rendered()
    deployment = one(resources, "Deployment", "manager")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["metadata"]["namespace"] == "ops-scaffold"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/ops-scaffold/manager:0.1.0"
    assert container["args"] == ["serve"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    defaults = Settings()
    assert ports == {
        "http": split_addr(defaults.server.http.addr)[1],
        "grpc": split_addr(defaults.server.grpc.addr)[1],
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert {"/livez", "/readyz"} <= app_paths
    requests = container["resources"]["requests"]
    assert requests["cpu"]
    assert requests["memory"]
    context = deployment["spec"]["template"]["spec"]["securityContext"]
    assert context["runAsNonRoot"]
    assert context["runAsUser"] != 0


def test_config_and_secrets_load_as_production() -> None:
    resources = rendered()
    config: dict[str, str] = one(resources, "ConfigMap", "manager-config")["data"]
    secret = next(s for s in secret_example() if s["metadata"]["name"] == "manager-secrets")
    environ = {**image_environment(), **config, **secret["stringData"]}
    for variable in environ:
        assert setting_of(variable) is not None, f"{variable} names no setting"
    settings = load(environ)
    assert settings.env == "production"
    assert settings.tls.terminated_by_proxy
    assert settings.server.http.public_url == "https://ops.example.com"
    # Both containers read these by name.
    for workload in (
        one(resources, "Deployment", "manager"),
        one(resources, "Job", "manager-migrate"),
    ):
        (container,) = kustomize.containers(workload)
        sources = {k: v["name"] for s in container["envFrom"] for k, v in s.items()}
        assert sources == {"configMapRef": "manager-config", "secretRef": "manager-secrets"}
    # Key files and packages are where the settings say, on the volumes that hold them.
    deployment = one(resources, "Deployment", "manager")
    (container,) = kustomize.containers(deployment)
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert str(settings.storage.local.path) == mounts["packages"]
    claim = volumes["packages"]["persistentVolumeClaim"]["claimName"]
    assert one(resources, "PersistentVolumeClaim", claim)["spec"]["accessModes"] == [
        "ReadWriteMany"
    ]
    keys = next(s for s in secret_example() if s["metadata"]["name"] == "manager-keys")
    assert volumes["keys"]["secret"]["secretName"] == "manager-keys"
    for key_file in (settings.storage.signing_key_file, settings.task.signing_key_file):
        assert key_file is not None
        assert str(key_file.parent) == mounts["keys"]
        assert key_file.name in keys["stringData"]
    assert str(settings.data_dir) == mounts["data"]


def test_the_migration_job_migrates_with_the_same_image() -> None:
    resources = rendered()
    job = one(resources, "Job", "manager-migrate")
    (container,) = kustomize.containers(job)
    (manager,) = kustomize.containers(one(resources, "Deployment", "manager"))
    assert container["args"] == ["migrate"]
    assert container["image"] == manager["image"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in {"OnFailure", "Never"}


def test_service_and_ingresses_reach_both_listeners() -> None:
    resources = rendered()
    service = one(resources, "Service", "manager")
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports["http"]["targetPort"] == "http"
    assert ports["grpc"]["targetPort"] == "grpc"
    selector = service["spec"]["selector"]
    labels = one(resources, "Deployment", "manager")["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()

    http = one(resources, "Ingress", "manager-http")
    grpc = one(resources, "Ingress", "manager-grpc")
    assert grpc["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == "GRPC"
    assert (
        int(grpc["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"])
        >= 3600
    )

    def routes(ingress: Resource) -> dict[str, str]:
        return {
            path["path"]: path["backend"]["service"]["port"]["name"]
            for rule in ingress["spec"]["rules"]
            for path in rule["http"]["paths"]
            if path["backend"]["service"]["name"] == "manager"
        }

    assert routes(http) == {"/": "http"}
    assert routes(grpc) == {f"/{name}/": "grpc" for name in GRPC_SERVICES}


def test_secrets_are_not_rendered() -> None:
    kinds = {r["kind"] for r in rendered()}
    assert "Secret" not in kinds  # created by the operator: secret.example.yaml shows them
    assert "Namespace" in kinds


def test_the_renderer_refuses_what_it_does_not_know(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("commonLabels: {a: b}\nresources: []\n")
    with pytest.raises(kustomize.Unsupported, match="commonLabels"):
        kustomize.render(tmp_path)


def test_the_documented_selectors_split_migration_from_the_rollout() -> None:
    """docs/deployment.md applies `-l app.kubernetes.io/component!=server` (all but the
    Deployment: config, volumes, the Job), waits for the Job, then applies the rest."""

    def component(resource: Resource) -> str | None:
        labels: dict[str, str] = resource["metadata"].get("labels", {})
        return labels.get("app.kubernetes.io/component")

    resources = rendered()
    first = [r for r in resources if component(r) != "server"]
    assert [r["kind"] for r in resources if component(r) == "server"] == ["Deployment"]
    assert {"Namespace", "ConfigMap", "PersistentVolumeClaim", "Job"} <= {r["kind"] for r in first}
    assert [r["kind"] for r in resources if component(r) == "migrate"] == ["Job"]
