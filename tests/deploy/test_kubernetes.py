"""deploy/kubernetes renders with kustomize into the objects an operator needs, and each one
is valid against the Kubernetes schemas (kubernetes-validate, strict: no unknown field)."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
#: The oldest Kubernetes the manifests are written for (policy/v1, batch/v1 Job TTL, ...).
VERSION = "1.27.0"


def render(overlay: str) -> dict[tuple[str, str], dict[str, Any]]:
    """`kubectl kustomize` of a directory: its objects by kind and name."""
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed (scripts/install installs it): it renders the manifests"
    done = subprocess.run(
        [kubectl, "kustomize", str(KUBERNETES / overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "deprecated" not in done.stderr.lower(), done.stderr
    objects = [o for o in yaml.safe_load_all(done.stdout) if o]
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


@pytest.mark.parametrize("overlay", ["base", "overlays/production"])
def test_every_rendered_object_is_valid_kubernetes(overlay: str) -> None:
    rendered = render(overlay)
    assert len(rendered) >= 8
    for manifest in rendered.values():
        kubernetes_validate.validate(manifest, VERSION, strict=True)
    broken = copy.deepcopy(render("base")[("Deployment", "dockyard-web")])
    broken["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSION, strict=True)


def _pod(manifest: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = manifest["spec"]["template"]["spec"]
    return pod


def test_the_base_holds_web_worker_migration_service_ingress_and_a_disruption_budget() -> None:
    objects = render("base")
    assert set(objects) == {
        ("ConfigMap", "dockyard"),
        ("ServiceAccount", "dockyard"),
        ("Job", "dockyard-migrate"),
        ("Deployment", "dockyard-web"),
        ("Deployment", "dockyard-worker"),
        ("PodDisruptionBudget", "dockyard-web"),
        ("Service", "dockyard-web"),
        ("Ingress", "dockyard"),
    }
    web = objects[("Deployment", "dockyard-web")]
    assert web["spec"]["replicas"] >= 2
    (container,) = _pod(web)["containers"]
    assert container["args"][0] == "serve"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"]["cpu"]
    pdb = objects[("PodDisruptionBudget", "dockyard-web")]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= _labels(web).items()
    service = objects[("Service", "dockyard-web")]
    assert service["spec"]["selector"].items() <= _labels(web).items()
    ingress = objects[("Ingress", "dockyard")]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "dockyard-web"
    assert objects[("Job", "dockyard-migrate")]["spec"]["template"]["spec"]["containers"][0][
        "args"
    ] == ["db", "upgrade"]
    worker = objects[("Deployment", "dockyard-worker")]
    assert _pod(worker)["containers"][0]["args"][0] == "worker"
    for deployment in (web, worker):  # neither starts before the migration is done
        (waits,) = _pod(deployment)["initContainers"]
        assert waits["args"][:2] == ["db", "wait"]


def _labels(deployment: dict[str, Any]) -> dict[str, str]:
    return dict(deployment["spec"]["template"]["metadata"]["labels"])


def test_secrets_come_from_a_secret_and_every_pod_runs_unprivileged() -> None:
    objects = render("overlays/production")
    pods = [_pod(o) for (kind, _), o in objects.items() if kind in {"Deployment", "Job"}]
    assert len(pods) == 3
    for pod in pods:
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
        for container in pod["containers"] + pod.get("initContainers", []):
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["image"].startswith("registry.example.org/dockyard:")
            for variable in container.get("env", []):
                if variable["name"] in {"DOCKYARD_DATABASE_URL", "DOCKYARD_SECRET_KEY"}:
                    assert variable["valueFrom"]["secretKeyRef"]["name"] == "dockyard"
                    assert "value" not in variable
    settings = objects[("ConfigMap", "dockyard")]["data"]
    assert not any("SECRET" in key or "PASSWORD" in key for key in settings)
    assert settings["DOCKYARD_BASE_URL"] == "https://tools.example.org"
    assert settings["DOCKYARD_LOG_FORMAT"] == "json"  # the base's, kept


def test_production_scales_out_and_names_its_migration_per_release() -> None:
    objects = render("overlays/production")
    assert all(
        o["metadata"].get("namespace") == "dockyard"
        for (k, _), o in objects.items()
        if k != "Namespace"
    )
    assert objects[("Deployment", "dockyard-web")]["spec"]["replicas"] == 3
    assert objects[("Deployment", "dockyard-worker")]["spec"]["replicas"] == 2
    assert objects[("PodDisruptionBudget", "dockyard-web")]["spec"]["minAvailable"] == 2
    assert ("Job", "dockyard-migrate-0-1-0") in objects
    tls = objects[("Ingress", "dockyard")]["spec"]["tls"]
    assert tls[0]["hosts"] == ["tools.example.org"]
