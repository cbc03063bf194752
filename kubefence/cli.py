"""`kubefence` and `kubectl fence`: a thin `main(argv) -> exit code` over the analyzer, the
enforcer's compiler and the lab; the grammar is in `kubefence.args`.

Exit codes: 0 success (for `can`: allowed), 1 `can`: denied, `check`/`diff`: failed,
2 bad input or usage, 130 interrupted. Every error the user can cause is a `KubefenceError`
and becomes one line per problem on stderr; warnings and notes go to stderr too, so stdout
stays machine-readable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
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
from kubefence.args import build_parser
from kubefence.progress import StderrBar
from lab.probe import probe_cluster
from policy.addresses import Family
from policy.cluster import ClusterState
from policy.engine import Analysis
from policy.errors import InputError, KubefenceError, UsageError
from policy.loader import load, load_texts


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


def _diff(args: argparse.Namespace, out: TextIO, err: TextIO, bar: StderrBar) -> int:
    if args.git:
        old = load_texts(git_sources(args.old, args.git), args.keep_going, bar)
    else:
        old = load([args.old], args.keep_going, bar)
    new = load([args.new], args.keep_going, bar)
    bar.close()
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
    cluster = _load(args, err, StderrBar.for_stream(err, "never"))
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


def _agent(args: argparse.Namespace) -> int:
    from enforcer.agent import AgentOptions, Timing, run  # the Kubernetes client: only here

    timing = Timing(resync=float(args.resync))
    return run(AgentOptions(node=args.node, kubeconfig=args.kubeconfig, netns=args.netns,
                            pod_netns_prefix=args.pod_netns_prefix,
                            health_address=args.health_address, health_port=args.health_port,
                            timing=timing, watch_timeout=args.watch_timeout))


def _lab_up_down(args: argparse.Namespace, out: TextIO) -> int:
    from lab import labup  # the Kubernetes client: only here

    if args.lab_command == "down":
        labup.down(Path(args.dir))
        return 0
    if args.lab_command == "controlplane":
        state = labup.control_plane(Path(args.dir), args.action)
        out.write(json.dumps(state, sort_keys=True) + "\n")
        return 0

    def ready(state: dict[str, object]) -> None:
        out.write(json.dumps(state, sort_keys=True) + "\n")
        out.flush()

    labup.up(args.nodes, Path(args.dir), agents=args.agents, ready=ready)
    return 0


def _load(args: argparse.Namespace, err: TextIO, bar: StderrBar) -> ClusterState:
    cluster = load(args.paths, args.keep_going, bar)
    bar.close()
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
        renderers: dict[str, Callable[[], str | Iterable[str]]] = {
            "table": lambda: table.probe_tables(view, color),
            "csv": lambda: csv_format.probe_csv(view),
            "md": lambda: markdown.probe_markdown(view),
            "dot": lambda: dot.probe_dot(view),
        }
    else:
        mview = build_matrix(analysis, ExternalsShown(args.externals))
        renderers = {
            "table": lambda: table.matrix_table(mview, color),
            "json": lambda: json_format.matrix_json_chunks(mview),
            "csv": lambda: csv_format.matrix_csv_chunks(mview),
            "md": lambda: markdown.matrix_markdown(mview),
            "dot": lambda: dot.matrix_dot(mview),
        }
    text = renderers[fmt]()  # large machine-readable matrices come in chunks, row by row
    out.writelines([text] if isinstance(text, str) else text)
    return 0


def _compile(args: argparse.Namespace, out: TextIO, err: TextIO, bar: StderrBar) -> int:
    cluster = _load(args, err, bar)
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
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage error
        return int(exc.code or 0)
    bar = StderrBar.for_stream(err, getattr(args, "progress", "never"))
    try:
        if args.command == "compile":
            return _compile(args, out, err, bar)
        if args.command == "diff":
            return _diff(args, out, err, bar)
        if args.command == "lab":
            if args.lab_command in ("up", "down", "controlplane"):
                return _lab_up_down(args, out)
            return _lab_probe(args, out, err)
        if args.command == "agent":
            return _agent(args)
        family = Family(args.family) if args.family else None
        analysis = Analysis(_load(args, err, bar), family, bar)
        bar.close()
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
        bar.close()  # before anything else is written to stderr
        for problem in exc.problems:
            print(f"error: {problem.render()}", file=err)
        return 2
    except (UsageError, KubefenceError) as exc:
        bar.close()
        print(f"error: {exc}", file=err)
        return 2
    finally:
        bar.close()


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
