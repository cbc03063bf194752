// Command kubefence-lab-cluster is a multi-call binary holding a real Kubernetes control plane
// for kubefence's lab: an embedded etcd and the upstream kube-apiserver, kube-controller-manager,
// kube-scheduler and kubectl, all linked from the k8s.io/kubernetes module as a library.
//
// Each subcommand is meant to run as its own process (the upstream components keep global
// flag, feature-gate and metrics registries that must not be shared). `up` starts them all as
// child processes of itself, re-executing this same binary. Invoked through a symlink named
// after a subcommand (for example `kubectl`), the binary behaves as that subcommand.
package main

import (
	"fmt"
	"os"
	"path/filepath"
)

const usage = `usage: kubefence-lab-cluster SUBCOMMAND [args...]

subcommands:
  up --dir DIR [--nodes-none] [--apiserver-port N]
                            start etcd, kube-apiserver, kube-controller-manager and kube-scheduler
                            on 127.0.0.1, write DIR/admin.kubeconfig, print one JSON line, run
                            until SIGTERM/SIGINT
  etcd --data-dir DIR --listen-client URL [--listen-peer URL] [--unsafe-no-fsync]
                            embedded etcd (127.0.0.1 only)
  kube-apiserver [flags]    upstream kube-apiserver
  kube-controller-manager [flags]
                            upstream kube-controller-manager
  kube-scheduler [flags]    upstream kube-scheduler
  kubectl [args]            upstream kubectl (also when invoked through a symlink named kubectl)
`

func main() {
	name, args := filepath.Base(os.Args[0]), os.Args[1:]
	if _, ok := subcommands[name]; !ok {
		if len(args) == 0 {
			fmt.Fprint(os.Stderr, usage)
			os.Exit(2)
		}
		name, args = args[0], args[1:]
	}
	run, ok := subcommands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "kubefence-lab-cluster: unknown subcommand %q\n\n%s", name, usage)
		os.Exit(2)
	}
	// The upstream commands read os.Args themselves (cobra, kubectl's plugin handling): make
	// them see exactly what they would as standalone binaries.
	os.Args = append([]string{name}, args...)
	os.Exit(run(args))
}

// subcommands maps each subcommand to its entry point, which returns the exit code.
var subcommands = map[string]func(args []string) int{
	"up":                      runUp,
	"etcd":                    runEtcd,
	"kube-apiserver":          runAPIServer,
	"kube-controller-manager": runControllerManager,
	"kube-scheduler":          runScheduler,
	"kubectl":                 runKubectl,
}
