"""The Kubernetes manifests (deploy/kubernetes), rendered and checked offline.

Each overlay is rendered once with ``kubectl kustomize`` (the kubectl on PATH, or
``BILLSYNC_TEST_KUBECTL``: deploy/ensure-kubectl.sh installs one). Core kinds are
validated against Kubernetes' own schema, strictly (kubernetes-validate); the
operators' kinds against their published CRD schemas vendored in
tests/fixtures/crd_schemas, as strictly. The rest holds the manifests to billsync:
its settings, its queue, its commands, its probes.

No cluster is involved: what an API server or an operator would do beyond the
schemas (admission, CEL rules, reconciling) is not tested here.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import click
import gunicorn.config
import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]

from worker.cli import cli
from worker.messaging.topology import APPLY_QUEUE, DEAD_LETTER_QUEUE, build_topology
from worker.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("production", "small")
CRD_SCHEMAS = ROOT / "tests" / "fixtures" / "crd_schemas"
# The schemas the core kinds are held to: a recent release, as kubectl on this
# machine. The manifests need 1.27 or newer (CronJob timeZone).
KUBERNETES_VERSION = "1.32.0"
# The operators' kinds, validated against tests/fixtures/crd_schemas.
OPERATOR_KINDS = {
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"),
    ("rabbitmq.com/v1beta1", "Policy"),
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("postgresql.cnpg.io/v1", "ScheduledBackup"),
}
BILLSYNC_IMAGE = "billsync"

Document = dict[str, Any]


# -- rendering --------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    overlay: str
    text: str
    documents: list[Document]
    kustomization: Document

    def of_kind(self, kind: str) -> list[Document]:
        return [doc for doc in self.documents if doc["kind"] == kind]

    def one(self, kind: str) -> Document:
        found = self.of_kind(kind)
        assert len(found) == 1, f"{self.overlay}: {len(found)} {kind}s, expected one"
        return found[0]

    def named(self, kind: str, name: str) -> Document:
        for doc in self.of_kind(kind):
            if doc["metadata"]["name"] == name:
                return doc
        raise AssertionError(f"{self.overlay}: no {kind} {name}")

    def config(self) -> dict[str, str]:
        data: dict[str, str] = self.one("ConfigMap")["data"]
        return data

    def pinned_image(self) -> Document:
        images = [i for i in self.kustomization.get("images", []) if i["name"] == BILLSYNC_IMAGE]
        assert len(images) == 1, f"{self.overlay}: kustomization.yaml pins no {BILLSYNC_IMAGE}"
        image: Document = images[0]
        return image


def kubectl() -> str:
    name = os.environ.get("BILLSYNC_TEST_KUBECTL", "kubectl")
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run `bash deploy/ensure-kubectl.sh`", pytrace=False)
    return found


def render(overlay: str) -> Rendered:
    directory = KUBERNETES / "overlays" / overlay
    done = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"kubectl kustomize {directory} failed:\n{done.stderr}", pytrace=False)
    documents = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    return Rendered(overlay, done.stdout, documents, kustomization)


@pytest.fixture(scope="module")
def renders() -> dict[str, Rendered]:
    """Every overlay, rendered once for the module."""
    return {overlay: render(overlay) for overlay in OVERLAYS}


@pytest.fixture(params=OVERLAYS)
def rendered(request: pytest.FixtureRequest, renders: dict[str, Rendered]) -> Rendered:
    return renders[request.param]


# -- what the documents hold --------------------------------------------------------------


def pod_specs(rendered: Rendered) -> Iterator[tuple[str, Document]]:
    """(kind/name, pod spec) of every workload."""
    for doc in rendered.documents:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in ("Deployment", "Job"):
            yield name, doc["spec"]["template"]["spec"]
        elif doc["kind"] == "CronJob":
            yield name, doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def containers(rendered: Rendered, init: bool = True) -> Iterator[tuple[str, Document]]:
    for workload, spec in pod_specs(rendered):
        kinds = ("initContainers", "containers") if init else ("containers",)
        for kind in kinds:
            for container in spec.get(kind, []):
                yield f"{workload} {container['name']}", container


def deployment_container(rendered: Rendered, name: str) -> Document:
    spec = rendered.named("Deployment", f"billsync-{name}")["spec"]["template"]["spec"]
    found: Document = next(c for c in spec["containers"] if c["name"] == name)
    return found


def selects(selector: Document, labels: Document) -> bool:
    wanted = selector.get("matchLabels", {})
    return all(labels.get(key) == value for key, value in wanted.items())


# -- strict CRD validation ------------------------------------------------------------------

_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_VALUES = ("additionalProperties", "items", "not", "contains")


def strict_schema(schema: Any) -> Any:
    """The schema with unknown keys refused where the API server's strict field
    validation refuses them: in every object that declares ``properties`` and neither
    ``additionalProperties`` nor ``x-kubernetes-preserve-unknown-fields: true``."""
    if not isinstance(schema, dict):
        return schema
    strict = dict(schema)
    for key in _SCHEMA_MAPS:
        if isinstance(schema.get(key), dict):
            strict[key] = {name: strict_schema(sub) for name, sub in schema[key].items()}
    for key in _SCHEMA_LISTS:
        if isinstance(schema.get(key), list):
            strict[key] = [strict_schema(sub) for sub in schema[key]]
    for key in _SCHEMA_VALUES:
        if key in schema:
            strict[key] = strict_schema(schema[key])
    open_ended = "additionalProperties" in schema or schema.get(
        "x-kubernetes-preserve-unknown-fields"
    )
    if "properties" in schema and not open_ended:
        strict["additionalProperties"] = False
    return strict


def crd_schema_path(api_version: str, kind: str) -> Path:
    group, _, version = api_version.rpartition("/")
    return CRD_SCHEMAS / group / f"{kind.lower()}_{version}.json"


@cache
def crd_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    path = crd_schema_path(api_version, kind)
    if not path.is_file():
        pytest.fail(
            f"missing CRD schema {path.relative_to(ROOT)} for {kind} ({api_version}): "
            "vendor the published one (tests/fixtures/crd_schemas/README.md)",
            pytrace=False,
        )
    schema = strict_schema(json.loads(path.read_text()))
    validator: jsonschema.protocols.Validator = jsonschema.validators.validator_for(schema)(schema)
    return validator


def crd_errors(doc: Document) -> list[str]:
    validator = crd_validator(doc["apiVersion"], doc["kind"])
    return [
        f"{'.'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in validator.iter_errors(doc)
    ]


# -- rendering and schemas ------------------------------------------------------------------


def test_every_overlay_renders_billsync_and_its_backing_services(rendered: Rendered) -> None:
    kinds = {doc["kind"] for doc in rendered.documents}
    assert {"Deployment", "Job", "CronJob", "RabbitmqCluster", "Cluster"} <= kinds


def test_core_kinds_are_valid_for_kubernetes_in_strict_mode(rendered: Rendered) -> None:
    problems = []
    for doc in rendered.documents:
        if (doc["apiVersion"], doc["kind"]) in OPERATOR_KINDS:
            continue
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{name}: {exc.message}")
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(map(str, exc.absolute_path)) or "(top)"
            problems.append(f"{name}: {where}: {exc.message}")
    assert not problems, f"{rendered.overlay}:\n" + "\n".join(problems)


def test_operator_kinds_are_valid_against_their_crd_schemas_strictly(rendered: Rendered) -> None:
    problems = []
    for doc in rendered.documents:
        if (doc["apiVersion"], doc["kind"]) in OPERATOR_KINDS:
            name = f"{doc['kind']}/{doc['metadata']['name']}"
            problems += [f"{name}: {error}" for error in crd_errors(doc)]
    assert not problems, f"{rendered.overlay}:\n" + "\n".join(problems)


def test_strict_crd_validation_refuses_a_misspelt_scaledobject_field(
    renders: dict[str, Rendered],
) -> None:
    scaled = copy.deepcopy(renders["production"].one("ScaledObject"))
    scaled["spec"]["minReplicaCont"] = scaled["spec"].pop("minReplicaCount")

    assert any("minReplicaCont" in error for error in crd_errors(scaled))


def test_strict_schema_closes_objects_that_declare_properties() -> None:
    schema = {"type": "object", "properties": {"spec": {"properties": {"a": {}}}}}

    validator = jsonschema.Draft202012Validator(strict_schema(schema))

    assert validator.is_valid({"spec": {"a": 1}})
    assert not validator.is_valid({"spec": {"a": 1, "b": 2}})


def test_strict_schema_leaves_preserve_unknown_fields_objects_open() -> None:
    schema = {
        "properties": {
            "definition": {"properties": {}, "x-kubernetes-preserve-unknown-fields": True}
        }
    }

    validator = jsonschema.Draft202012Validator(strict_schema(schema))

    assert validator.is_valid({"definition": {"delivery-limit": 20}})


# -- billsync's settings, commands and topology --------------------------------------------


def test_every_billsync_variable_in_the_manifests_is_a_setting(rendered: Rendered) -> None:
    settings = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    named = set(re.findall(rf"\b{ENV_PREFIX}[A-Z0-9_]+\b", rendered.text))

    assert named, "the manifests name no BILLSYNC_* variable at all"
    assert named <= settings, f"not billsync settings: {sorted(named - settings)}"


def _resolve(argv: list[str]) -> None:
    """Parse ARGV as the billsync CLI would, without running anything."""
    assert argv[0] == "billsync", f"{argv} does not run billsync"
    command: click.Command = cli
    words = argv[1:]
    path = ["billsync"]
    while isinstance(command, click.Group):
        assert words, f"{' '.join(path)} needs a subcommand"
        name = words.pop(0)
        sub = command.commands.get(name)
        assert sub is not None, (
            f"`{' '.join(path)} {name}` is not a billsync command "
            f"({' '.join(path)} has: {', '.join(sorted(command.commands))})"
        )
        command, path = sub, [*path, name]
    command.make_context(" ".join(path), words)  # unknown options raise UsageError


def test_containers_run_real_billsync_subcommands(rendered: Rendered) -> None:
    for _, container in containers(rendered, init=False):
        _resolve(list(container["command"]) + list(container.get("args", [])))


def test_init_containers_wait_with_billsync_db_wait(rendered: Rendered) -> None:
    commands = {
        tuple(container["command"])
        for _, container in containers(rendered)
        if container["name"] == "wait-for-schema"
    }
    assert len(commands) == 1, "the gateway and the worker wait the same way"
    command = list(commands.pop())
    assert command[:3] == ["billsync", "db", "wait"]
    _resolve(command)


def test_gateway_and_worker_wait_for_the_schema_before_starting(rendered: Rendered) -> None:
    for name in ("gateway", "worker"):
        spec = rendered.named("Deployment", f"billsync-{name}")["spec"]["template"]["spec"]
        assert [c["name"] for c in spec.get("initContainers", [])] == ["wait-for-schema"]


def test_migration_job_runs_db_upgrade_and_is_named_after_the_pinned_tag(
    rendered: Rendered,
) -> None:
    job = rendered.one("Job")
    tag = rendered.pinned_image()["newTag"]

    assert job["metadata"]["name"] == f"billsync-migrate-{tag.replace('.', '-')}"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "billsync",
        "db",
        "upgrade",
    ]


def test_cronjobs_forbid_concurrent_runs(rendered: Rendered) -> None:
    cronjobs = rendered.of_kind("CronJob")
    commands = {
        tuple(
            cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
        )
        for cronjob in cronjobs
    }

    assert commands == {("billsync", "billing", "run-due"), ("billsync", "db", "prune")}
    assert {cronjob["spec"]["concurrencyPolicy"] for cronjob in cronjobs} == {"Forbid"}


def test_scaledobject_scales_workers_on_the_apply_queue_length(rendered: Rendered) -> None:
    scaled = rendered.one("ScaledObject")
    (trigger,) = scaled["spec"]["triggers"]

    assert scaled["spec"]["scaleTargetRef"]["name"] == "billsync-worker"
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"]["queueName"] == APPLY_QUEUE
    assert trigger["metadata"]["protocol"] == "amqp"
    assert trigger["metadata"]["mode"] == "QueueLength"


def test_workers_never_scale_to_zero_because_they_also_run_the_pulls(rendered: Rendered) -> None:
    spec = rendered.one("ScaledObject")["spec"]

    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]


def test_keda_reads_the_broker_url_the_pods_read(rendered: Rendered) -> None:
    (secret,) = rendered.one("TriggerAuthentication")["spec"]["secretTargetRef"]
    worker = deployment_container(rendered, "worker")
    secrets = [source["secretRef"]["name"] for source in worker["envFrom"] if "secretRef" in source]

    assert secret["parameter"] == "host"
    assert secret["key"] == f"{ENV_PREFIX}BROKER_URL"
    assert secret["name"] in secrets


def test_rabbitmq_policy_repeats_the_apply_queue_arguments(rendered: Rendered) -> None:
    (policy,) = [
        p["spec"]
        for p in rendered.of_kind("Policy")
        if re.search(p["spec"]["pattern"], APPLY_QUEUE)
    ]
    delivery_limit = int(rendered.config()[f"{ENV_PREFIX}DELIVERY_LIMIT"])
    queue = build_topology(Settings(delivery_limit=delivery_limit)).apply_queue
    arguments: dict[str, Any] = vars(queue)["queue_arguments"]  # kombu sets it untyped
    declared = {k.removeprefix("x-"): v for k, v in arguments.items() if k != "x-queue-type"}

    assert not re.search(policy["pattern"], DEAD_LETTER_QUEUE)
    assert policy["applyTo"] == "queues"
    assert policy["definition"] == declared


def test_pods_read_the_database_url_from_the_cloudnativepg_app_secret(rendered: Rendered) -> None:
    cluster = rendered.one("Cluster")["metadata"]["name"]
    for name, container in containers(rendered):
        (url,) = [e for e in container["env"] if e["name"] == f"{ENV_PREFIX}DATABASE_URL"]
        reference = url["valueFrom"]["secretKeyRef"]
        assert (reference["name"], reference["key"]) == (f"{cluster}-app", "uri"), name


def test_settings_take_the_cloudnativepg_uri_as_given() -> None:
    uri = "postgresql://billsync:pw@billsync-db-rw.billsync:5432/billsync"

    settings = Settings(database_url=uri)

    assert (
        settings.database_url
        == "postgresql+psycopg://billsync:pw@billsync-db-rw.billsync:5432/billsync"
    )


def test_config_map_references_name_the_generated_config_map(rendered: Rendered) -> None:
    generated = {doc["metadata"]["name"] for doc in rendered.of_kind("ConfigMap")}
    for name, container in containers(rendered):
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                assert source["configMapRef"]["name"] in generated, name


def test_trial_needs_no_secret_beyond_its_example_and_the_operators(
    renders: dict[str, Rendered],
) -> None:
    small = renders["small"]
    available = {doc["metadata"]["name"] for doc in small.of_kind("Secret")}
    available.add(f"{small.one('Cluster')['metadata']['name']}-app")  # CloudNativePG's
    referenced = {
        ref["name"]
        for _, container in containers(small)
        for ref in [s["secretRef"] for s in container.get("envFrom", []) if "secretRef" in s]
        + [e["valueFrom"]["secretKeyRef"] for e in container.get("env", []) if "valueFrom" in e]
    }
    referenced |= {s["name"] for s in small.one("TriggerAuthentication")["spec"]["secretTargetRef"]}

    assert referenced <= available, f"missing: {sorted(referenced - available)}"


# -- exposure -------------------------------------------------------------------------------


def _open_to_everyone(rule: Document) -> bool:
    peers = rule.get("from") or []
    return not peers or any("ipBlock" in peer for peer in peers)


def test_the_namespace_denies_ingress_by_default(rendered: Rendered) -> None:
    assert any(
        policy["spec"]["podSelector"] == {}
        and policy["spec"]["policyTypes"] == ["Ingress"]
        and not policy["spec"].get("ingress")
        for policy in rendered.of_kind("NetworkPolicy")
    )


def test_only_the_gateway_is_reachable_from_outside(rendered: Rendered) -> None:
    gateway = rendered.named("Service", "billsync-gateway")["spec"]
    gateway_pod = rendered.named("Deployment", "billsync-gateway")["spec"]["template"]
    gateway_ports = {p["containerPort"] for p in gateway_pod["spec"]["containers"][0]["ports"]}
    open_policies = [
        policy["spec"]
        for policy in rendered.of_kind("NetworkPolicy")
        if any(_open_to_everyone(rule) for rule in policy["spec"].get("ingress", []))
    ]

    assert open_policies, "nothing reaches the gateway"
    for policy in open_policies:
        assert policy["podSelector"]["matchLabels"] == gateway["selector"]
        assert selects(policy["podSelector"], gateway_pod["metadata"]["labels"])
        for rule in policy["ingress"]:
            assert {p["port"] for p in rule["ports"]} <= gateway_ports


def test_only_the_worker_may_reach_addresses_outside_on_https(rendered: Rendered) -> None:
    for policy in rendered.of_kind("NetworkPolicy"):
        for rule in policy["spec"].get("egress", []):
            if any("ipBlock" in peer for peer in rule.get("to", [])):
                labels = policy["spec"]["podSelector"]["matchLabels"]
                assert labels["app.kubernetes.io/component"] == "worker"
                assert [p["port"] for p in rule["ports"]] == [443]


def test_worker_metrics_are_served_scraped_and_let_in_on_the_metrics_port(
    rendered: Rendered,
) -> None:
    port = int(rendered.config()[f"{ENV_PREFIX}METRICS_PORT"])
    worker = deployment_container(rendered, "worker")
    policy = rendered.named("NetworkPolicy", "billsync-metrics-from-prometheus")["spec"]

    assert [p["containerPort"] for p in worker["ports"] if p["name"] == "metrics"] == [port]
    assert worker["livenessProbe"]["tcpSocket"]["port"] == "metrics"
    assert [p["port"] for rule in policy["ingress"] for p in rule["ports"]] == [port]


def test_servicemonitors_scrape_metrics_on_ports_their_services_name(rendered: Rendered) -> None:
    for monitor in rendered.of_kind("ServiceMonitor"):
        selector = monitor["spec"]["selector"]
        services = [
            s for s in rendered.of_kind("Service") if selects(selector, s["metadata"]["labels"])
        ]
        assert services, f"ServiceMonitor {monitor['metadata']['name']} selects no Service"
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["path"] == "/metrics"
            for service in services:
                assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}


# -- pods -------------------------------------------------------------------------------------


def test_gateway_is_ready_on_readyz_and_alive_on_healthz(rendered: Rendered) -> None:
    gateway = deployment_container(rendered, "gateway")

    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_gateway_grace_period_outlasts_prestop_and_gunicorn_graceful_timeout(
    rendered: Rendered,
) -> None:
    spec = rendered.named("Deployment", "billsync-gateway")["spec"]["template"]["spec"]
    pre_stop = deployment_container(rendered, "gateway")["lifecycle"]["preStop"]["exec"]["command"]
    graceful = gunicorn.config.GracefulTimeout.default  # billsync does not change it

    assert pre_stop[0] == "sleep"
    assert spec["terminationGracePeriodSeconds"] > int(pre_stop[1]) + graceful


def test_every_deployment_container_has_requests_and_limits(rendered: Rendered) -> None:
    for deployment in rendered.of_kind("Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        for container in spec["containers"] + spec.get("initContainers", []):
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert set(resources[bound]) == {"cpu", "memory"}, container["name"]


def test_pods_run_as_non_root_on_a_read_only_root_filesystem(rendered: Rendered) -> None:
    for name, spec in pod_specs(rendered):
        assert spec["securityContext"]["runAsNonRoot"] is True, name
    for name, container in containers(rendered):
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name


def test_no_pod_mounts_a_service_account_token(rendered: Rendered) -> None:
    for account in rendered.of_kind("ServiceAccount"):
        assert account["automountServiceAccountToken"] is False
    for name, spec in pod_specs(rendered):
        assert spec["automountServiceAccountToken"] is False, name


def test_billsync_containers_run_the_image_the_overlay_pins(rendered: Rendered) -> None:
    pinned = rendered.pinned_image()
    expected = f"{pinned['newName']}:{pinned['newTag']}"

    assert {container["image"] for _, container in containers(rendered)} == {expected}


def test_every_image_names_a_version(rendered: Rendered) -> None:
    images = [container["image"] for _, container in containers(rendered)]
    images.append(rendered.one("RabbitmqCluster")["spec"]["image"])
    images.append(rendered.one("Cluster")["spec"]["imageName"])
    for image in images:
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        assert "@sha256:" in image or tag not in ("", "latest"), image


# -- backing services -----------------------------------------------------------------------


def test_production_runs_three_rabbitmq_nodes_and_a_postgres_standby(
    renders: dict[str, Rendered],
) -> None:
    production = renders["production"]

    assert production.one("RabbitmqCluster")["spec"]["replicas"] == 3
    assert production.one("Cluster")["spec"]["instances"] == 2


def test_trial_runs_one_of_everything_at_rest(renders: dict[str, Rendered]) -> None:
    small = renders["small"]

    assert small.one("HorizontalPodAutoscaler")["spec"]["minReplicas"] == 1
    assert small.one("ScaledObject")["spec"]["minReplicaCount"] == 1
    assert small.one("RabbitmqCluster")["spec"]["replicas"] == 1
    assert small.one("Cluster")["spec"]["instances"] == 1


def test_only_production_archives_postgres_to_object_storage(renders: dict[str, Rendered]) -> None:
    production, small = renders["production"], renders["small"]
    backup = production.one("Cluster")["spec"]["backup"]

    assert backup["barmanObjectStore"]["destinationPath"].startswith("s3://")
    assert backup["retentionPolicy"]
    assert production.one("ScheduledBackup")["spec"]["cluster"]["name"] == "billsync-db"
    assert "backup" not in small.one("Cluster")["spec"]
    assert not small.of_kind("ScheduledBackup")
