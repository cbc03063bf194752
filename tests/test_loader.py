"""Loading: input forms, API-server defaulting, and validation errors that point at the input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from policy.cluster import ClusterState, Direction
from policy.convert import convert
from policy.documents import parse_documents
from policy.errors import InputError
from policy.loader import assemble, assemble_base, assemble_with, load, load_texts
from policy.ports import Protocol

POLICY_HEAD = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: p
  namespace: x
spec:
"""


def _load(text: str, name: str = "in.yaml", keep_going: bool = False):  # type: ignore[no-untyped-def]
    return load_texts([(name, text, False)], keep_going=keep_going)


def _errors(text: str, name: str = "in.yaml") -> list[str]:
    with pytest.raises(InputError) as info:
        _load(text, name)
    return [p.render() for p in info.value.problems]


# (id, spec body appended to POLICY_HEAD, expected line, field path, message fragment)
INVALID_POLICIES = [
    ("endport-below-port", "  podSelector: {}\n  ingress:\n  - ports:\n    - port: 90\n"
     "      endPort: 80\n", 11, "spec.ingress[0].ports[0].endPort", "greater than or equal"),
    ("endport-with-named-port", "  podSelector: {}\n  ingress:\n  - ports:\n    - port: http\n"
     "      endPort: 80\n", 11, "spec.ingress[0].ports[0].endPort", "non-numeric"),
    ("endport-without-port", "  podSelector: {}\n  egress:\n  - ports:\n    - endPort: 80\n",
     10, "spec.egress[0].ports[0].endPort", "not specified"),
    ("port-out-of-range", "  podSelector: {}\n  ingress:\n  - ports:\n    - port: 70000\n",
     10, "spec.ingress[0].ports[0].port", "between 1 and 65535"),
    ("bad-port-name", "  podSelector: {}\n  ingress:\n  - ports:\n    - port: Http_1\n",
     10, "spec.ingress[0].ports[0].port", "invalid port name"),
    ("bad-protocol", "  podSelector: {}\n  ingress:\n  - ports:\n    - protocol: ICMP\n",
     10, "spec.ingress[0].ports[0].protocol", "unsupported protocol"),
    ("bad-cidr", "  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock:\n"
     "        cidr: 10.0.0.300/8\n", 11, "spec.ingress[0].from[0].ipBlock.cidr",
     "not a valid CIDR"),
    ("except-outside-cidr", "  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock:\n"
     "        cidr: 10.0.0.0/8\n        except: [11.0.0.0/16]\n", 12,
     "spec.ingress[0].from[0].ipBlock.except[0]", "strict subset"),
    ("except-equal-to-cidr", "  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock:\n"
     "        cidr: 10.0.0.0/8\n        except: [10.0.0.0/8]\n", 12,
     "spec.ingress[0].from[0].ipBlock.except[0]", "strict subset"),
    ("ipblock-with-selector", "  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock:\n"
     "        cidr: 10.0.0.0/8\n      podSelector: {}\n", 10, "spec.ingress[0].from[0]",
     "both ipBlock and another peer"),
    ("empty-peer", "  podSelector: {}\n  ingress:\n  - from:\n    - {}\n", 10,
     "spec.ingress[0].from[0]", "must specify a peer"),
    ("in-without-values", "  podSelector:\n    matchExpressions:\n    - key: app\n"
     "      operator: In\n", 9, "spec.podSelector.matchExpressions[0].values", "must be specified"),
    ("exists-with-values", "  podSelector:\n    matchExpressions:\n    - key: app\n"
     "      operator: Exists\n      values: [a]\n", 11,
     "spec.podSelector.matchExpressions[0].values", "may not be specified"),
    ("bad-operator", "  podSelector:\n    matchExpressions:\n    - key: app\n"
     "      operator: Equals\n      values: [a]\n", 10,
     "spec.podSelector.matchExpressions[0].operator", "unsupported operator"),
    ("bad-label-value", "  podSelector:\n    matchLabels:\n      app: -bad-\n", 9,
     "spec.podSelector.matchLabels[app]", "invalid label value"),
    ("bad-policy-type", "  podSelector: {}\n  policyTypes: [Ingress, Sideways]\n", 8,
     "spec.policyTypes[1]", "unsupported value"),
    ("missing-pod-selector", "  ingress: []\n", 7, "spec.podSelector", "required"),
    ("port-wrong-type", "  podSelector: {}\n  ingress:\n  - ports:\n    - port: [80]\n",
     10, "spec.ingress[0].ports[0].port", "integer or a string"),
    ("rules-not-a-list", "  podSelector: {}\n  ingress: 5\n", 8, "spec.ingress", "tuple"),
]


@pytest.mark.parametrize(("body", "line", "field", "fragment"),
                         [c[1:] for c in INVALID_POLICIES], ids=[c[0] for c in INVALID_POLICIES])
def test_invalid_policy_is_reported_at_its_line_and_field(body: str, line: int, field: str,
                                                          fragment: str) -> None:
    errors = _errors(POLICY_HEAD + body)
    expected_prefix = f"in.yaml:{line}: NetworkPolicy x/p: {field}: "
    assert any(e.startswith(expected_prefix) and fragment in e for e in errors), errors
    assert all("\n" not in e for e in errors)


def test_all_errors_of_a_file_are_reported_together() -> None:
    text = (POLICY_HEAD + "  podSelector: {}\n  ingress:\n  - ports:\n    - port: 0\n"
            "    - protocol: ICMP\n---\n" + POLICY_HEAD.replace("name: p", "name: q")
            + "  podSelector: {}\n  policyTypes: [Up]\n")
    errors = _errors(text)
    assert len(errors) == 3
    assert [e.split(":")[1] for e in errors] == ["10", "11", "20"]


def test_yaml_syntax_error_names_file_and_line() -> None:
    errors = _errors("kind: Pod\nmetadata:\n  name: [a\n", "bad.yaml")
    assert len(errors) == 1 and errors[0].startswith("bad.yaml:") and "invalid YAML" in errors[0]


def test_json_syntax_error_names_file_and_line() -> None:
    errors = _errors('{"kind": "Pod",\n "metadata": }', "bad.json")
    assert errors == ["bad.json:2: invalid JSON: Expecting value"]


def test_json_validation_error_finds_its_line() -> None:
    doc = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": "p", "namespace": "x"},
         "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 0}]}]}}]}
    errors = _errors(json.dumps(doc, indent=1), "dump.json")
    assert len(errors) == 1
    line = int(errors[0].split(":")[1])
    assert json.dumps(doc, indent=1).splitlines()[line - 1].strip().startswith('"port": 0')


def test_unsupported_policy_api_version_is_an_error() -> None:
    errors = _errors("apiVersion: extensions/v1beta1\nkind: NetworkPolicy\nmetadata: {name: p}\n")
    assert "unsupported apiVersion" in errors[0]


def test_duplicate_object_is_an_error() -> None:
    pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x}\n"
    errors = _errors(pod + "---\n" + pod)
    assert errors == ["in.yaml:5: Pod x/a: duplicate object (first at in.yaml:1)"]


def test_keep_going_loads_the_rest_and_returns_problems_as_warnings() -> None:
    text = (POLICY_HEAD + "  podSelector: {}\n  ingress:\n  - ports:\n    - port: 0\n---\n"
            "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x}\n")
    state = _load(text, keep_going=True)
    assert [p.key for p in state.pods] == ["x/a"]
    assert state.policies == ()
    assert any("between 1 and 65535" in w.render() for w in state.warnings)


def test_defaults_protocol_tcp_and_policy_types() -> None:
    state = _load(POLICY_HEAD + "  podSelector: {}\n  ingress:\n  - ports:\n    - port: 80\n"
                  "  egress:\n  - {}\n")
    policy = state.policies[0]
    assert policy.ingress[0].ports[0].protocol is Protocol.TCP
    assert policy.policy_types == {Direction.INGRESS, Direction.EGRESS}


def test_policy_types_default_to_ingress_only_without_egress_rules() -> None:
    state = _load(POLICY_HEAD + "  podSelector: {}\n")
    assert state.policies[0].policy_types == {Direction.INGRESS}


def test_cidr_host_bits_are_cleared_with_a_warning_at_the_field() -> None:
    state = _load(POLICY_HEAD + "  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock:\n"
                  "        cidr: 10.1.2.3/8\n        except: [10.1.0.1/16]\n")
    block = state.policies[0].ingress[0].peers[0].ip_block
    assert block is not None and block.cidr == "10.0.0.0/8" and block.excepts == ("10.1.0.0/16",)
    rendered = [w.render() for w in state.warnings]
    assert rendered == [
        "in.yaml:11: NetworkPolicy x/p: spec.ingress[0].from[0].ipBlock.cidr: "
        "10.1.2.3/8 has host bits set: read as 10.0.0.0/8; API servers with strict CIDR "
        "validation (KEP-4858, on in 1.37) refuse it",
        "in.yaml:12: NetworkPolicy x/p: spec.ingress[0].from[0].ipBlock.except[0]: "
        "10.1.0.1/16 has host bits set: read as 10.1.0.0/16; API servers with strict CIDR "
        "validation (KEP-4858, on in 1.37) refuse it",
    ]


def test_namespace_name_label_is_set_and_overrides() -> None:
    state = _load("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n  labels:\n"
                  "    kubernetes.io/metadata.name: wrong\n    team: a\n")
    assert state.namespaces["x"] == {"kubernetes.io/metadata.name": "x", "team": "a"}


def test_referenced_namespaces_exist_implicitly() -> None:
    state = _load("apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: q}\n---\n"
                  + POLICY_HEAD.replace("namespace: x", "namespace: r") + "  podSelector: {}\n")
    assert state.namespaces == {"q": {"kubernetes.io/metadata.name": "q"},
                                "r": {"kubernetes.io/metadata.name": "r"}}


def test_missing_namespace_is_default() -> None:
    state = _load("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n")
    assert [p.key for p in state.pods] == ["default/a"]


@pytest.mark.parametrize("kind,api,spec", [
    ("Deployment", "apps/v1", {"template": {"metadata": {"labels": {"app": "w"}}}}),
    ("StatefulSet", "apps/v1", {"template": {"metadata": {"labels": {"app": "w"}}}}),
    ("DaemonSet", "apps/v1", {"template": {"metadata": {"labels": {"app": "w"}}}}),
    ("ReplicaSet", "apps/v1", {"template": {"metadata": {"labels": {"app": "w"}}}}),
    ("ReplicationController", "v1", {"template": {"metadata": {"labels": {"app": "w"}}}}),
    ("Job", "batch/v1", {"template": {"metadata": {"labels": {"app": "w"}}}}),
    ("CronJob", "batch/v1",
     {"jobTemplate": {"spec": {"template": {"metadata": {"labels": {"app": "w"}}}}}}),
])
def test_workloads_stand_for_their_pods(kind: str, api: str, spec: dict[str, object]) -> None:
    doc = {"apiVersion": api, "kind": kind, "metadata": {"name": "w1", "namespace": "x"},
           "spec": spec}
    state = _load(json.dumps(doc), "w.json")
    assert [(p.key, p.kind, dict(p.labels)) for p in state.pods] == [("x/w1", kind,
                                                                      {"app": "w"})]


def test_workload_is_not_counted_twice_when_its_pods_are_loaded() -> None:
    text = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: x}
spec: {template: {metadata: {labels: {app: web}}}}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web-5d
  namespace: x
  ownerReferences: [{kind: Deployment, name: web}]
spec: {template: {metadata: {labels: {app: web}}}}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-5d-abc
  namespace: x
  labels: {app: web}
  ownerReferences: [{kind: ReplicaSet, name: web-5d}]
"""
    assert [p.key for p in _load(text).pods] == ["x/web-5d-abc"]


def test_list_kinds_empty_documents_and_other_kinds() -> None:
    text = """\
---
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: a, namespace: x}
- apiVersion: v1
  kind: Service
  metadata: {name: s, namespace: x}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
"""
    state = _load(text)
    assert [p.key for p in state.pods] == ["x/a"]
    assert state.notes == ("ignored 1 objects of other kinds (ConfigMap 1)",)
    assert state.service_ips == {"x/s": ()}  # Services are read for their cluster IPs


def test_finished_pods_are_left_out_with_a_note() -> None:
    state = _load("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nstatus: {phase: Succeeded}\n")
    assert state.pods == () and "finished" in state.notes[0]


def test_folder_is_read_recursively_and_skips_non_manifests(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pod.yml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n")
    (tmp_path / "values.yaml").write_text("replicas: 3\n")
    (tmp_path / "README.md").write_text("# not read\n")
    (tmp_path / "empty.yaml").write_text("")
    state = load([str(tmp_path)])
    assert [p.key for p in state.pods] == ["default/a"]
    assert "skipped 1 files" in state.notes[0]


def test_named_file_that_is_not_a_manifest_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "values.yaml"
    f.write_text("replicas: 3\n")
    with pytest.raises(InputError, match="no `kind`"):
        load([str(f)])


def test_missing_path_is_an_error() -> None:
    with pytest.raises(InputError, match="no such file or folder"):
        load(["/nonexistent/kubefence"])


def test_invalid_pod_port_name_and_duplicates() -> None:
    text = """\
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x}
spec:
  containers:
  - name: c
    ports:
    - {name: http, containerPort: 80}
    - {name: http, containerPort: 81}
    - {name: "9999", containerPort: 82}
"""
    errors = _errors(text)
    assert any("spec.containers[0].ports[1].name: duplicate port name" in e for e in errors)
    assert any("spec.containers[0].ports[2].name: invalid port name" in e for e in errors)


def test_sidecar_init_container_ports_are_served() -> None:
    text = """\
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x}
spec:
  initContainers:
  - {name: side, restartPolicy: Always, ports: [{name: proxy, containerPort: 15001}]}
  - {name: init, ports: [{name: once, containerPort: 9}]}
"""
    assert [p.name for p in _load(text).pods[0].ports] == ["proxy"]


def test_workload_named_like_a_pod_is_an_error() -> None:
    text = ("apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: x}\n---\n"
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: web, namespace: x}\n"
            "spec: {template: {metadata: {labels: {app: web}}}}\n")
    errors = _errors(text)
    assert errors == ["in.yaml:5: StatefulSet x/web: Pod x/web (in.yaml:1) has the same "
                      "namespace/name; kubefence names pods and workloads by namespace/name, "
                      "so rename one"]


def test_empty_policy_types_default_like_absent() -> None:
    state = _load(POLICY_HEAD + "  podSelector: {}\n  policyTypes: []\n  egress:\n  - {}\n")
    assert state.policies[0].policy_types == {Direction.INGRESS, Direction.EGRESS}


def test_broken_manifest_in_a_folder_is_an_error_not_skipped(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text("apiVersion: networking.k8s.io/v1\nkind: [\n")
    (tmp_path / "notes.yaml").write_text("just: [text\n")  # no sign of a manifest: skipped
    with pytest.raises(InputError) as info:
        load([str(tmp_path)])
    assert [p.location.file for p in info.value.problems] == [str(tmp_path / "policy.yaml")]


def test_service_cluster_ips_are_kept_and_validated() -> None:
    text = ("apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: x}\n"
            "spec: {clusterIP: 10.96.0.10, clusterIPs: [10.96.0.10, 'fd00::a']}\n---\n"
            "apiVersion: v1\nkind: Service\nmetadata: {name: h, namespace: x}\n"
            "spec: {clusterIP: None}\n")
    state = _load(text)
    assert {k: [str(ip) for ip in v] for k, v in state.service_ips.items()} == {
        "x/s": ["10.96.0.10", "fd00::a"], "x/h": []}
    errors = _errors("apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: x}\n"
                     "spec: {clusterIP: 10.96.0.300}\n")
    assert errors == ["in.yaml:4: Service x/s: spec.clusterIP: '10.96.0.300': "
                      "not a valid IP address"]


PARALLEL_SOURCES = [
    ("a.yaml", POLICY_HEAD + "  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock:\n"
     "        cidr: 10.1.2.3/8\n", False),
    ("b.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {app: a}}\n"
     "spec:\n  containers: [{name: c, ports: [{containerPort: 80, name: http}]}]\n"
     "status: {podIP: 10.0.0.1}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
     False),
    ("c.json", '{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", '
     '"kind": "Namespace", "metadata": {"name": "x", "labels": {"team": "t"}}}, '
     '{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", '
     '"namespace": "y"}, "spec": {"template": {"metadata": {"labels": {"app": "d"}}}}}]}',
     False),
    ("d.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x}\n", False),
    ("e.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: x}\n"
     "spec: {containers: [{name: c, ports: [{containerPort: 0}]}]}\n", False),
    ("f.yaml", "replicas: 3\n", True),
    ("g.yaml", "apiVersion: v1\nkind: [\n", False),
]


@pytest.mark.parametrize("keep_going", [False, True])
def test_loading_in_worker_processes_gives_the_same_cluster_and_messages(
        keep_going: bool) -> None:
    """Files converted in parallel and assembled in order: duplicates across files (d.yaml's
    pod), errors (e.yaml, g.yaml), skipped and ignored objects, warnings, all as one by one."""
    def outcome(workers: int) -> object:
        try:
            return load_texts(PARALLEL_SOURCES, keep_going, workers=workers)
        except InputError as exc:
            return [p.render() for p in exc.problems]

    one_by_one = outcome(1)
    assert outcome(2) == one_by_one
    assert outcome(3) == one_by_one
    if keep_going:
        assert isinstance(one_by_one, ClusterState) and len(one_by_one.pods) == 2
    else:
        assert isinstance(one_by_one, list) and any("duplicate object" in m for m in one_by_one)


def test_assemble_gives_the_cluster_load_gives() -> None:
    """The agent's path: objects converted one at a time, assembled at sync."""
    text = PARALLEL_SOURCES[1][1] + "---\n" + PARALLEL_SOURCES[0][1]
    docs = list(parse_documents(text, "x.yaml"))
    assert assemble([convert(d) for d in docs]) == load_texts([("x.yaml", text, False)])


NS_DOC = "apiVersion: v1\nkind: Namespace\nmetadata: {name: x, labels: {team: t}}\n"
POD_DOC = ("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}}}\n"
           "spec: {{containers: [{{name: c, ports: [{{containerPort: {port}}}]}}]}}\n"
           "status: {{podIP: 10.0.0.{ip}}}\n")
POLICY_DOC = ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
              "metadata: {{name: {name}, namespace: {ns}}}\nspec:\n  podSelector: {{}}\n"
              "  ingress:\n  - from:\n    - ipBlock: {{cidr: {cidr}}}\n")


@pytest.mark.parametrize("policies", [
    [("p", "x", "10.0.0.0/8")],
    [("p", "other", "10.1.2.3/8"), ("q", "x", "10.0.0.0/8")],  # a warning, an implicit ns
    [("p", "x", "10.0.0.0/33")],  # an error in a policy
    [],
], ids=["one", "warning-and-implicit-namespace", "bad-policy", "none"])
@pytest.mark.parametrize("bad_pod", [False, True], ids=["pods-ok", "bad-pod"])
def test_assemble_with_a_base_equals_assembling_everything(
        policies: list[tuple[str, str, str]], bad_pod: bool) -> None:
    """The agent's path while only policies change: namespaces and pods assembled once,
    completed by the policies; the same cluster, warnings and errors, the base's pods kept."""
    texts = [NS_DOC, POD_DOC.format(name="a", ns="x", port=80, ip=1),
             POD_DOC.format(name="b", ns="y", port=0 if bad_pod else 81, ip=2)]
    texts += [POLICY_DOC.format(name=n, ns=ns, cidr=c) for n, ns, c in policies]
    docs = [d for t in texts for d in parse_documents(t, "api")]
    contributions = [convert(d) for d in docs]
    base = assemble_base(contributions[:3])

    def outcome(build: Callable[[], ClusterState]) -> object:
        try:
            return build()
        except InputError as exc:
            return [p.render() for p in exc.problems]

    whole = outcome(lambda: assemble(contributions))
    assert outcome(lambda: assemble_with(base, contributions[3:])) == whole
    if isinstance(whole, ClusterState):
        assert assemble_with(base, contributions[3:]).pods is base.pods
