"""The command line's grammar: every subcommand, option and help text of `kubefence`.

`build_parser` is all argparse; `kubefence.cli` runs what it parses. Argument types that can
be wrong (`PORT/PROTO`, counts) are checked here, so a bad argument is a usage error (exit 2)
before anything is loaded.
"""

from __future__ import annotations

import argparse

from analyzer.matrix import ExternalsShown, Probe
from policy.ports import Protocol

MATRIX_FORMATS = ("table", "json", "csv", "md", "dot")
QUERY_FORMATS = ("text", "json")


def parse_probe(value: str) -> Probe:
    """`80`, `80/TCP`, `53/udp`: a destination port and protocol (TCP when omitted)."""
    port_text, _, proto_text = value.partition("/")
    try:
        port = int(port_text)
        protocol = Protocol((proto_text or "TCP").upper())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r}: expected PORT or PORT/PROTOCOL, e.g. 80/TCP, 53/UDP, 3868/SCTP"
        ) from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r}: port must be between 1 and 65535")
    return Probe(port, protocol)


def positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: expected a whole number of at least 1")
    return n


def progress_option(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                    help="a progress bar on stderr for long runs (auto: when stderr is a "
                         "terminal)")


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Kubernetes NetworkPolicy reachability: what can talk to what, and why.",
        epilog="PATH is a YAML or JSON file, a folder (read recursively), or - for stdin. "
        "Exit codes: 0 ok/allowed, 1 denied, 2 bad input.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sp: argparse.ArgumentParser, family: bool = True) -> None:
        sp.add_argument(
            "paths", nargs="+", metavar="PATH", help="manifests: files, folders, or - for stdin"
        )
        sp.add_argument(
            "--keep-going",
            action="store_true",
            help="report unreadable objects as warnings and analyse the rest",
        )
        sp.add_argument("-q", "--quiet", action="store_true", help="no warnings or notes")
        progress_option(sp)
        if not family:
            return
        sp.add_argument("--family", type=int, choices=(4, 6),
                        help="dual-stack clusters: match pods on their IPv4 or IPv6 address "
                             "(default: each pod's primary address)")

    m = sub.add_parser(
        "matrix",
        help="the pod-to-pod allow matrix",
        description="Print, for every ordered pair of pods (and the external "
        "ranges the policies mention), the ports allowed.",
    )
    common(m)
    m.add_argument("-o", "--output", choices=MATRIX_FORMATS, default="table")
    m.add_argument(
        "--probe",
        action="append",
        type=parse_probe,
        default=[],
        metavar="PORT/PROTO",
        help="a yes/no matrix for this destination port (repeatable); "
        "with -o json, the stable {pods, probes} contract",
    )
    m.add_argument(
        "--externals",
        choices=[e.value for e in ExternalsShown],
        default=ExternalsShown.MENTIONED.value,
        help="external rows and columns: none, the ranges policies mention "
        "(default), or all (adds 'others', every unmentioned address)",
    )
    m.add_argument("--color", choices=("auto", "always", "never"), default="auto")

    c = sub.add_parser(
        "can",
        help="may SRC connect to DST? yes or no, and why",
        description="Exit code 0 when allowed, 1 when denied. SRC and DST are "
        "namespace/name of a pod or workload, or an IP address.",
    )
    c.add_argument("source", metavar="SRC")
    c.add_argument("destination", metavar="DST")
    common(c)
    c.add_argument(
        "--port",
        type=parse_probe,
        metavar="PORT/PROTO",
        help="the destination port (default: any port)",
    )
    c.add_argument("-o", "--output", choices=QUERY_FORMATS, default="text")

    for name, what, desc in (
        ("who-can-reach", "DST", "every peer that may connect to DST"),
        ("reach", "SRC", "every peer SRC may connect to"),
    ):
        r = sub.add_parser(name, help=desc, description=f"List {desc}, with the ports.")
        r.add_argument("endpoint", metavar=what)
        common(r)
        r.add_argument("-o", "--output", choices=QUERY_FORMATS, default="text")

    k = sub.add_parser(
        "compile",
        help="the nftables ruleset a node would get (touches nothing)",
        description="Print the nftables ruleset that node NAME would be given: for each pod on "
        "the node (spec.nodeName), the peers, protocols and ports it may receive from and "
        "send to, in every address family its pods use. Only pods with an address of their "
        "own are programmed: hostNetwork pods and pods without status.podIPs (workloads, YAML "
        "from CI) are left out, with a note on stderr naming them. Nothing touches the kernel. "
        "-o text is an nft script (nft -f), -o json the libnftables JSON commands; either "
        "replaces the table 'inet kubefence' whole, in one transaction.",
    )
    common(k, family=False)
    k.add_argument("--node", required=True, metavar="NAME", help="the node to compile for")
    k.add_argument("-o", "--output", choices=QUERY_FORMATS, default="text")
    k.add_argument(
        "--assign-nodes",
        type=positive_int,
        metavar="N",
        help="first place every pod round-robin, in namespace/name order, on nodes "
        "node-0..node-{N-1}, replacing spec.nodeName: for input without nodeName, such as "
        "the conformance cases.",
    )
    ch = sub.add_parser(
        "check", help="CI check: intent assertions and lints",
        description="Check the policies: every assertion of the intent file (--expect) must "
                    "hold, and no lint at or above --fail-on may fire. Exit 0 when all is well, "
                    "1 on a failure, 2 on bad input. See manifests/examples/shop-intents/ for "
                    "an intent file.")
    common(ch)
    ch.add_argument("--expect", metavar="FILE", help="intent file (YAML) of assertions")
    ch.add_argument("--format", choices=("text", "junit", "sarif", "github"), default="text")
    ch.add_argument("--fail-on", choices=("error", "warning", "note", "never"), default="error",
                    help="lint severity that fails the check (default: error)")
    ch.add_argument("--no-lints", action="store_true", help="assertions only")

    rp = sub.add_parser(
        "report", help="one self-contained HTML page: matrix, graph, lints, assertions",
        description="Write an HTML report that needs no network: the allow matrix as a heatmap "
                    "grouped by namespace (each cell's tooltip names the ports and the policies "
                    "and rules behind them), a graph of the allowed pairs, the lint findings, "
                    "and the results of the assertions of --expect. Exit 0, 2 on bad input.")
    common(rp)
    rp.add_argument("--expect", metavar="FILE", help="intent file (YAML) of assertions")
    rp.add_argument("-o", "--output", required=True, metavar="FILE",
                    help="the HTML file to write, or - for stdout")

    d = sub.add_parser(
        "diff", help="what a change opens and closes",
        description="The semantic difference between two versions of the manifests: "
                    "connections added and removed, grouped by pod pair with their port ranges, "
                    "and the policy changes behind each. OLD and NEW are files or folders; with "
                    "--git REV, OLD is read from that git revision (e.g. origin/main). Exit 1 "
                    "when --fail-on matches, else 0; 2 on bad input.")
    d.add_argument("old", metavar="OLD")
    d.add_argument("new", metavar="NEW")
    d.add_argument("--git", metavar="REV", help="read OLD at this git revision")
    d.add_argument("-o", "--output", choices=("text", "json", "md"), default="text")
    d.add_argument("--fail-on", choices=("added", "removed", "any"),
                   help="exit 1 when connections were added, removed, or either")
    d.add_argument("--keep-going", action="store_true",
                   help="report unreadable objects as warnings and compare the rest")
    d.add_argument("-q", "--quiet", action="store_true", help="no warnings or notes")
    progress_option(d)

    lab = sub.add_parser("lab", help="real packets in a network-namespace lab (root)",
                         description="Build nodes and pods as network namespaces, enforce the "
                                     "policies with nftables, and send real packets.")
    lab_sub = lab.add_subparsers(dest="lab_command", required=True, metavar="LAB_COMMAND")
    lp = lab_sub.add_parser(
        "probe", help="the matrix observed from real connections",
        description="Build the lab from the manifests (pods need status.podIP; hostNetwork pods "
                    "are not supported), program every lab node with its own pods' rules, "
                    "connect from every pod to every pod for each probe, print the observed "
                    "matrix in the analyzer's --probe JSON contract, and tear everything down "
                    "(also on failure and Ctrl-C). Needs root. A pod's traffic to itself never "
                    "reaches its node: the lab enforces it in the pod's own namespace. SCTP "
                    "probes are listed under not_probed when the kernel has no SCTP sockets.")
    common(lp, family=False)
    lp.add_argument("--probe", action="append", type=parse_probe, default=[],
                    metavar="PORT/PROTO",
                    help="repeatable; default: every port/protocol some pod serves")
    lp.add_argument("--nodes", type=positive_int, default=2,
                    help="lab nodes to spread the pods over (default 2)")
    lp.add_argument("-o", "--output", choices=("json", "table"), default="json")
    lu = lab_sub.add_parser(
        "up", help="a real control plane and N lab nodes, until SIGTERM/SIGINT",
        description="Start a Kubernetes control plane on 127.0.0.1 (etcd, kube-apiserver with "
                    "RBAC, controller-manager, scheduler; admin kubeconfig in DIR), N lab nodes "
                    "as network namespaces, each with a kubelet stand-in (it gives the pods "
                    "bound to it namespaces, addresses from the node's podCIDR and port "
                    "servers, and writes their status), and one enforcer agent per node. "
                    "When ready, writes DIR/lab.json and prints the same JSON line. Runs in "
                    "the foreground until SIGTERM or SIGINT (or `lab down`), then removes "
                    "everything. Needs root.")
    lu.add_argument("--nodes", type=positive_int, default=2, help="lab nodes (default 2)")
    lu.add_argument("--dir", default="/run/kubefence-lab", metavar="DIR",
                    help="state, logs and kubeconfig (default /run/kubefence-lab)")
    lu.add_argument("--agents", action=argparse.BooleanOptionalAction, default=None,
                    help="start `kubefence agent` per node (default: when it is installed)")
    lc = lab_sub.add_parser(
        "controlplane", help="stop or start again the control plane of the lab in DIR",
        description="Ask `lab up` of DIR to stop its control plane (etcd, API server, "
                    "controllers): the nodes, pods, agents and the rules in force stay, and "
                    "the agents and kubelet stand-ins retry until it is back. `start` brings it "
                    "back on the same port with the same certificates, tokens and etcd data. "
                    "Waits until it is done and prints the lab's state. Needs root.")
    lc.add_argument("action", choices=("stop", "start"))
    lc.add_argument("--dir", default="/run/kubefence-lab", metavar="DIR",
                    help="the lab's directory (default /run/kubefence-lab)")
    ld = lab_sub.add_parser("down", help="stop the lab that `lab up` runs in DIR",
                            description="Stop `lab up` of DIR (SIGTERM, then wait) and remove "
                                        "whatever it left behind. Needs root.")
    ld.add_argument("--dir", default="/run/kubefence-lab", metavar="DIR",
                    help="the lab's directory (default /run/kubefence-lab)")

    ag = sub.add_parser(
        "agent", help="the node agent: keep this node's nftables rules in step with the cluster",
        description="List and watch pods, namespaces and NetworkPolicies on the API server and "
                    "program this node's pods with nftables: a full replace at start and every "
                    "--resync seconds, deltas in between. Serves /healthz, /readyz and "
                    "/metrics. Logs JSON lines on stderr. SIGTERM/SIGINT stop it (exit 0) and "
                    "leave the rules in force. Needs NET_ADMIN.")
    ag.add_argument("--node", required=True, help="this node's name (spec.nodeName of its pods)")
    ag.add_argument("--kubeconfig", metavar="PATH",
                    help="a kubeconfig file (default: the in-cluster service account)")
    ag.add_argument("--netns", metavar="NAME",
                    help="lab only: program network namespace NAME (/run/netns/NAME) while "
                         "talking to the API server from this one")
    ag.add_argument("--pod-netns-prefix", metavar="PREFIX",
                    help="lab only: also program each local pod's own network namespace, "
                         "/run/netns/PREFIX<pod uid>, for the pod's traffic to itself, which "
                         "never reaches the node")
    ag.add_argument("--health-address", default="127.0.0.1", metavar="ADDR",
                    help="address of /healthz, /readyz and /metrics (default 127.0.0.1)")
    ag.add_argument("--health-port", type=int, default=9904, metavar="PORT",
                    help="their port (default 9904; 0 picks a free one, logged at start)")
    ag.add_argument("--resync", type=positive_int, default=60, metavar="SECONDS",
                    help="replace the table whole this often (default 60)")
    ag.add_argument("--watch-timeout", type=positive_int, default=60, metavar="SECONDS",
                    help="resume each watch request after this long (default 60)")
    return p
