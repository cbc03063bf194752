"""Pydantic models of the Kubernetes objects kubefence reads, shaped like the API.

Only the fields that matter for NetworkPolicy semantics are modelled; the rest is ignored. The
models are frozen and hold the object as written: `policy.defaults` applies the API server's
defaulting, `policy.validation` its validation, and `policy.loader` runs both once, at load.
Field docs quote the upstream API reference where the semantics hang on its wording.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StrictInt, StrictStr

from policy.selectors import LabelSelector

_CONFIG = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


def _int_or_string(value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("must be an integer or a string")
    return value


IntOrString = Annotated[int | str, PlainValidator(_int_or_string)]


class OwnerReference(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: StrictStr = ""
    name: StrictStr = ""


class ObjectMeta(BaseModel):
    model_config = _CONFIG

    name: StrictStr = ""
    namespace: StrictStr | None = None
    labels: dict[str, StrictStr] = Field(default_factory=dict)
    owner_references: tuple[OwnerReference, ...] = Field(default=(), alias="ownerReferences")


class Namespace(BaseModel):
    model_config = _CONFIG

    metadata: ObjectMeta = Field(default_factory=ObjectMeta)


class ContainerPort(BaseModel):
    model_config = _CONFIG

    name: StrictStr | None = None
    container_port: StrictInt = Field(alias="containerPort")
    protocol: StrictStr | None = None  # defaulted to TCP


class Container(BaseModel):
    model_config = _CONFIG

    name: StrictStr = ""
    ports: tuple[ContainerPort, ...] = ()
    # Init containers with restartPolicy Always are sidecars: their ports are served.
    restart_policy: StrictStr | None = Field(default=None, alias="restartPolicy")


class PodSpec(BaseModel):
    model_config = _CONFIG

    containers: tuple[Container, ...] = ()
    init_containers: tuple[Container, ...] = Field(default=(), alias="initContainers")
    host_network: bool = Field(default=False, alias="hostNetwork")
    node_name: StrictStr | None = Field(default=None, alias="nodeName")


class PodIP(BaseModel):
    model_config = _CONFIG

    ip: StrictStr


class PodStatus(BaseModel):
    model_config = _CONFIG

    phase: StrictStr | None = None
    pod_ip: StrictStr | None = Field(default=None, alias="podIP")
    pod_ips: tuple[PodIP, ...] = Field(default=(), alias="podIPs")
    host_ip: StrictStr | None = Field(default=None, alias="hostIP")


class Pod(BaseModel):
    model_config = _CONFIG

    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodSpec = Field(default_factory=PodSpec)
    status: PodStatus = Field(default_factory=PodStatus)


class PodTemplateSpec(BaseModel):
    model_config = _CONFIG

    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodSpec = Field(default_factory=PodSpec)


class IPBlock(BaseModel):
    """`IPBlock describes a particular CIDR ... The except entry describes CIDRs that should not
    be included within this rule.`"""

    model_config = _CONFIG

    cidr: StrictStr = ""
    except_: tuple[StrictStr, ...] = Field(default=(), alias="except")


class NetworkPolicyPeer(BaseModel):
    """`podSelector ... If namespaceSelector is also set, then the NetworkPolicyPeer as a whole
    selects the pods matching podSelector in the Namespaces selected by NamespaceSelector.
    Otherwise it selects the pods matching podSelector in the policy's own namespace.`"""

    model_config = _CONFIG

    pod_selector: LabelSelector | None = Field(default=None, alias="podSelector")
    namespace_selector: LabelSelector | None = Field(default=None, alias="namespaceSelector")
    ip_block: IPBlock | None = Field(default=None, alias="ipBlock")


class NetworkPolicyPort(BaseModel):
    """`port represents the port on the given protocol. This can either be a numerical or named
    port on a pod. If this field is not provided, this matches all port names and numbers.`
    `endPort indicates that the range of ports from port to endPort if set, inclusive, should be
    allowed by the policy.`"""

    model_config = _CONFIG

    protocol: StrictStr | None = None  # defaulted to TCP
    port: IntOrString | None = None
    end_port: StrictInt | None = Field(default=None, alias="endPort")


class NetworkPolicyIngressRule(BaseModel):
    """`If this field is empty or missing, this rule matches all sources (traffic not restricted
    by source).` (from) / `If this field is empty or missing, this rule matches all ports.`"""

    model_config = _CONFIG

    ports: tuple[NetworkPolicyPort, ...] = ()
    from_: tuple[NetworkPolicyPeer, ...] = Field(default=(), alias="from")


class NetworkPolicyEgressRule(BaseModel):
    model_config = _CONFIG

    ports: tuple[NetworkPolicyPort, ...] = ()
    to: tuple[NetworkPolicyPeer, ...] = ()


class NetworkPolicySpec(BaseModel):
    """`podSelector selects the pods to which this NetworkPolicy object applies. ... An empty
    podSelector matches all pods in this namespace.`"""

    model_config = _CONFIG

    pod_selector: LabelSelector | None = Field(default=None, alias="podSelector")
    ingress: tuple[NetworkPolicyIngressRule, ...] = ()
    egress: tuple[NetworkPolicyEgressRule, ...] = ()
    policy_types: tuple[StrictStr, ...] | None = Field(default=None, alias="policyTypes")


class NetworkPolicy(BaseModel):
    model_config = _CONFIG

    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: NetworkPolicySpec = Field(default_factory=NetworkPolicySpec)


class WorkloadSpec(BaseModel):
    """The part of Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController and Job
    specs that matters here: the pod template."""

    model_config = _CONFIG

    template: PodTemplateSpec | None = None


class Workload(BaseModel):
    model_config = _CONFIG

    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: WorkloadSpec = Field(default_factory=WorkloadSpec)


class JobTemplate(BaseModel):
    model_config = _CONFIG

    spec: WorkloadSpec = Field(default_factory=WorkloadSpec)


class CronJobSpec(BaseModel):
    model_config = _CONFIG

    job_template: JobTemplate = Field(default_factory=JobTemplate, alias="jobTemplate")


class CronJob(BaseModel):
    model_config = _CONFIG

    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: CronJobSpec = Field(default_factory=CronJobSpec)


class ServiceSpec(BaseModel):
    model_config = _CONFIG

    cluster_ip: StrictStr | None = Field(default=None, alias="clusterIP")
    cluster_ips: tuple[StrictStr, ...] = Field(default=(), alias="clusterIPs")


class Service(BaseModel):
    """Read only for its cluster IPs: NetworkPolicy does not select Services, but an ipBlock
    that covers their addresses is worth a lint."""

    model_config = _CONFIG

    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ServiceSpec = Field(default_factory=ServiceSpec)
