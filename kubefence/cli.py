"""`kubefence` and `kubectl fence`: a thin `main(argv) -> exit code` over the analyzer and the
enforcer's compiler (`compile` prints a node's ruleset; it never touches the kernel).

Exit codes: 0 success (for `can`: allowed), 1 `can`: denied, 2 bad input or usage,
130 interrupted. Every error the user can cause is a `KubefenceError` and becomes one line per
problem on stderr; warnings and notes go to stderr too, so stdout stays machine-readable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from analyzer.diff import FailOn, semantic_diff
from analyzer.findings import Severity
from analyzer.formats import (
    check_format,
    csv_format,
    diff_format,
    dot,
    html_report,
    json_format,
    markdown,
    table,
    text,
)
from analyzer.gitsource import git_sources
from analyzer.intents import check as check_intent
from analyzer.intents import load_intents
from analyzer.lints import LINT_DOCS, run_lints
from analyzer.matrix import (
    ExternalsShown,
    Probe,
    build_matrix,
    build_probe_view,
    probe_document,
    probe_view_of,
)
from analyzer.queries import can, reach, who_can_reach
from analyzer.report import build_report
from enforcer.compiler import compile_node
from enforcer.placement import assign_round_robin, require_node, unprogrammed_note
from enforcer.render import full_replace
from enforcer.render_text import ruleset_text
from lab.probe import probe_cluster
from policy.addresses import Family
from policy.cluster import ClusterState
from policy.engine import Analysis
from policy.errors import InputError, KubefenceError, UsageError
from policy.loader import load, load_texts
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


def _parser(prog: str) -> argparse.ArgumentParser:
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
    return p


def _check(args: argparse.Namespace, analysis: Analysis, out: TextIO) -> int:
    results = []
    if args.expect:
        results = [check_intent(analysis, intent, loc) for intent, loc in load_intents(args.expect)]
    findings = [] if args.no_lints else run_lints(analysis)
    level = None if args.fail_on == "never" else Severity(args.fail_on)
    failed = any(not r.passed for r in results) or any(
        level is not None and f.severity.rank >= level.rank for f in findings)
    if args.format == "junit":
        out.write(check_format.check_junit(results, findings, level))
    elif args.format == "sarif":
        out.write(check_format.check_sarif(results, findings, LINT_DOCS))
    elif args.format == "github":
        out.write(check_format.check_github(results, findings))
    else:
        out.write(check_format.check_text(results, findings, failed))
    return 1 if failed else 0


def _report(args: argparse.Namespace, analysis: Analysis, out: TextIO) -> int:
    results = []
    if args.expect:
        results = [check_intent(analysis, intent, loc) for intent, loc in load_intents(args.expect)]
    view = build_report(analysis, run_lints(analysis), results, inputs=args.paths,
                        expect=args.expect)
    page = html_report.report_html(view)
    if args.output == "-":
        out.write(page)
        return 0
    try:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(page)
    except OSError as exc:
        raise UsageError(f"{args.output}: cannot write the report: {exc.strerror}") from None
    return 0


def _diff(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.git:
        old = load_texts(git_sources(args.old, args.git), keep_going=args.keep_going)
    else:
        old = load([args.old], keep_going=args.keep_going)
    new = load([args.new], keep_going=args.keep_going)
    if not args.quiet:
        for state in (old, new):
            for w in state.warnings:
                print(f"warning: {w.render()}", file=err)
    result = semantic_diff(old, new)
    render = {"text": diff_format.diff_text, "json": diff_format.diff_json,
              "md": diff_format.diff_markdown}[args.output]
    out.write(render(result))
    return 1 if args.fail_on and result.fails(FailOn(args.fail_on)) else 0


def _lab_probe(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    cluster = _load(args, err)
    probes = args.probe or sorted({Probe(p.port, p.protocol) for pod in cluster.pods
                                   for p in pod.ports}, key=lambda p: (p.port, p.protocol))
    if not probes:
        raise UsageError("no --probe given and no pod serves a port")
    doc = probe_cluster(cluster, [(p.port, p.protocol) for p in probes], nodes=args.nodes)
    for skipped in doc.get("not_probed", []):
        if not args.quiet:
            print(f"note: not probed: {skipped['port']}/{skipped['protocol']}: "
                  f"{skipped['reason']}", file=err)
    if args.output == "json":
        out.write(json_format.probe_json(doc))
    else:
        out.write(table.probe_tables(probe_view_of(doc)))
    return 0


def _load(args: argparse.Namespace, err: TextIO) -> ClusterState:
    cluster = load(args.paths, keep_going=args.keep_going)
    if not args.quiet:
        for w in cluster.warnings:
            print(f"warning: {w.render()}", file=err)
        for n in cluster.notes:
            print(f"note: {n}", file=err)
    return cluster


def _matrix(args: argparse.Namespace, analysis: Analysis, out: TextIO) -> int:
    color = args.color == "always" or (
        args.color == "auto" and out.isatty() and "NO_COLOR" not in os.environ
    )
    fmt = args.output
    if args.probe:
        if fmt == "json":
            out.write(json_format.probe_json(probe_document(analysis, args.probe)))
            return 0
        view = build_probe_view(analysis, args.probe)
        renderers = {
            "table": lambda: table.probe_tables(view, color),
            "csv": lambda: csv_format.probe_csv(view),
            "md": lambda: markdown.probe_markdown(view),
            "dot": lambda: dot.probe_dot(view),
        }
    else:
        mview = build_matrix(analysis, ExternalsShown(args.externals))
        renderers = {
            "table": lambda: table.matrix_table(mview, color),
            "json": lambda: json_format.matrix_json(mview),
            "csv": lambda: csv_format.matrix_csv(mview),
            "md": lambda: markdown.matrix_markdown(mview),
            "dot": lambda: dot.matrix_dot(mview),
        }
    out.write(renderers[fmt]())
    return 0


def _compile(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    cluster = _load(args, err)
    if args.assign_nodes:
        cluster = assign_round_robin(cluster, args.assign_nodes)
    require_node(cluster, args.node, hint="--assign-nodes N places pods on node-0..node-{N-1}")
    ruleset = compile_node(cluster, args.node)
    note = unprogrammed_note(cluster, args.node)
    if note and not args.quiet:
        print(f"note: {note}", file=err)
    if args.output == "json":
        out.write(json.dumps({"nftables": full_replace(ruleset)}, indent=2) + "\n")
    else:
        out.write(ruleset_text(ruleset))
    return 0


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "kubefence"
    prog = "kubectl fence" if prog == "kubectl-fence" else "kubefence"
    parser = _parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage error
        return int(exc.code or 0)
    try:
        if args.command == "compile":
            return _compile(args, out, err)
        if args.command == "diff":
            return _diff(args, out, err)
        if args.command == "lab":
            return _lab_probe(args, out, err)
        family = Family(args.family) if args.family else None
        analysis = Analysis(_load(args, err), family)
        if args.command == "matrix":
            return _matrix(args, analysis, out)
        if args.command == "check":
            return _check(args, analysis, out)
        if args.command == "report":
            return _report(args, analysis, out)
        if args.command == "can":
            answer = can(analysis, args.source, args.destination, args.port)
            out.write(
                json_format.can_json(answer) if args.output == "json" else text.can_text(answer)
            )
            return 0 if answer.allowed else 1
        query = who_can_reach if args.command == "who-can-reach" else reach
        result = query(analysis, args.endpoint)
        out.write(
            json_format.reach_json(result) if args.output == "json" else text.reach_text(result)
        )
        return 0
    except InputError as exc:
        for problem in exc.problems:
            print(f"error: {problem.render()}", file=err)
        return 2
    except (UsageError, KubefenceError) as exc:
        print(f"error: {exc}", file=err)
        return 2


def run() -> None:
    """Console-script entry point."""
    try:
        code = main()
        sys.stdout.flush()
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:  # `kubefence matrix ... | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0
    sys.exit(code)
