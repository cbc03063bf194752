package main

// The `up` subcommand: one command for a whole control plane on 127.0.0.1. It makes the
// credentials, starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler as
// child processes (this binary again, one subcommand each, logs in DIR/<name>.log), waits until
// the apiserver is ready and the controller-manager has made the `default` ServiceAccount,
// prints one JSON line and runs until SIGTERM or SIGINT, when it stops the children in reverse
// order and exits 0. If a child dies on its own, `up` stops the others and exits 1.

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func runUp(args []string) int {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	dir := fs.String("dir", "", "cluster directory: credentials, kubeconfigs, etcd data, logs (required)")
	fs.Bool("nodes-none", false, "accepted for clarity: up never registers nodes, they are the caller's")
	port := fs.Int("apiserver-port", 0, "apiserver port on 127.0.0.1 (default: a free port)")
	timeout := fs.Duration("timeout", 3*time.Minute, "how long to wait for the control plane")
	verbosity := fs.Int("v", 0, "log verbosity of the Kubernetes components")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "up: usage: up --dir DIR [--nodes-none] [--apiserver-port N] [--timeout D] [--v N]")
		return 2
	}
	c := &cluster{verbosity: *verbosity}
	err := c.run(*dir, *port, *timeout)
	c.stop()
	switch {
	case errors.Is(err, errStopped):
		return 0
	case err != nil:
		fmt.Fprintln(os.Stderr, "up:", err)
		return 1
	}
	return 0
}

// errStopped: a SIGTERM or SIGINT asked `up` to stop, which is no failure.
var errStopped = errors.New("stopped by a signal")

// cluster is the set of running children, in start order.
type cluster struct {
	children  []*child
	verbosity int
}

type child struct {
	name string
	log  string // path of its log file
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

func (c *cluster) run(dirArg string, apiPort int, timeout time.Duration) error {
	dir, err := filepath.Abs(dirArg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	os.Remove(filepath.Join(dir, "up.json")) // a previous run's
	p, err := ensurePKI(dir)
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	if apiPort == 0 {
		apiPort = ports[2]
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	server := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	kubeconfig := func(name, user, token string) (string, error) {
		path := filepath.Join(dir, name+".kubeconfig")
		return path, writeKubeconfig(path, server, p.CACert, user, token)
	}
	admin, err := kubeconfig("admin", "kubefence-admin", p.AdminToken)
	if err != nil {
		return err
	}
	kcmConfig, err := kubeconfig("controller-manager", "system:kube-controller-manager", p.ControllerManagerToken)
	if err != nil {
		return err
	}
	schedConfig, err := kubeconfig("scheduler", "system:kube-scheduler", p.SchedulerToken)
	if err != nil {
		return err
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	deadline := time.Now().Add(timeout)
	client := httpsClient(p.CACert)

	if err := c.start(dir, "etcd", "--data-dir", filepath.Join(dir, "etcd"), "--listen-client", etcdURL,
		"--listen-peer", fmt.Sprintf("http://127.0.0.1:%d", ports[1]), "--unsafe-no-fsync"); err != nil {
		return err
	}
	if err := c.waitFor("etcd", deadline, stop, func() bool {
		return get(&http.Client{Timeout: 5 * time.Second}, etcdURL+"/health", "") == http.StatusOK
	}); err != nil {
		return err
	}

	if err := c.start(dir, "kube-apiserver",
		"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(apiPort),
		"--tls-cert-file", p.ServingCert, "--tls-private-key-file", p.ServingKey,
		"--client-ca-file", p.CACert,
		"--token-auth-file", p.TokenFile,
		"--authorization-mode", "Node,RBAC",
		"--service-cluster-ip-range", serviceCIDR,
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", p.SAPub,
		"--service-account-signing-key-file", p.SAKey,
		// The `kubernetes` Service gets no endpoints: 127.0.0.1 is not a valid endpoint address.
		"--endpoint-reconciler-type", "none",
		"--cert-dir", filepath.Join(dir, "apiserver-certs"),
		"--v", strconv.Itoa(c.verbosity),
	); err != nil {
		return err
	}
	if err := c.waitFor("kube-apiserver", deadline, stop, func() bool {
		return get(client, server+"/readyz", p.AdminToken) == http.StatusOK
	}); err != nil {
		return err
	}

	if err := c.start(dir, "kube-controller-manager",
		"--kubeconfig", kcmConfig,
		"--bind-address", "127.0.0.1", "--secure-port", "0", // 0: serve no HTTPS at all
		"--leader-elect=false",
		"--use-service-account-credentials",
		"--service-account-private-key-file", p.SAKey,
		"--root-ca-file", p.CACert,
		"--allocate-node-cidrs=false",
		"--service-cluster-ip-range", serviceCIDR,
		"--cluster-name", "kubefence-lab",
		// Its default, /usr/libexec/kubernetes/..., would be created on the host.
		"--flex-volume-plugin-dir", filepath.Join(dir, "flexvolume"),
		"--v", strconv.Itoa(c.verbosity),
	); err != nil {
		return err
	}
	if err := c.start(dir, "kube-scheduler",
		"--kubeconfig", schedConfig,
		"--bind-address", "127.0.0.1", "--secure-port", "0",
		"--leader-elect=false",
		"--v", strconv.Itoa(c.verbosity),
	); err != nil {
		return err
	}
	// The controller-manager works once namespaces get their default ServiceAccount (which
	// the ServiceAccount admission plugin needs before any pod can be created). In a directory
	// used before, the account is already there and this proves nothing more than /readyz.
	if err := c.waitFor("kube-controller-manager", deadline, stop, func() bool {
		return get(client, server+"/api/v1/namespaces/default/serviceaccounts/default", p.AdminToken) == http.StatusOK
	}); err != nil {
		return err
	}

	line, _ := json.Marshal(map[string]any{
		"kubeconfig": admin, "server": server, "pid": os.Getpid(), "dir": dir, "ca": p.CACert,
	})
	if err := os.WriteFile(filepath.Join(dir, "up.json"), append(line, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Println(string(line))
	os.Stdout.Sync()

	return c.waitFor("", time.Time{}, stop, nil)
}

// start runs this binary's subcommand name with args as a child, its output in DIR/name.log.
func (c *cluster) start(dir, name string, args ...string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logPath := filepath.Join(dir, name+".log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer log.Close() // the child keeps its own descriptor
	cmd := exec.Command(self, append([]string{name}, args...)...)
	cmd.Stdout, cmd.Stderr = log, log
	// Own process group, so a terminal's Ctrl-C reaches `up` alone and it stops the children
	// in order; and a SIGTERM to the children should `up` die without stopping them.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	ch := &child{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(ch.done) }()
	c.children = append(c.children, ch)
	return nil
}

// waitFor polls ready until it holds (ready == nil never does). It fails when the deadline
// passes (a zero deadline never does), when a child exits, or with errStopped on a signal.
func (c *cluster) waitFor(what string, deadline time.Time, stop <-chan os.Signal, ready func() bool) error {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready != nil && ready() {
			return nil
		}
		for _, ch := range c.children {
			select {
			case <-ch.done:
				return fmt.Errorf("%s exited (%s); the end of %s:\n%s",
					ch.name, ch.cmd.ProcessState, ch.log, tail(ch.log, 10))
			default:
			}
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return fmt.Errorf("%s not ready in time", what)
		}
		select {
		case <-stop:
			return errStopped
		case <-tick.C:
		}
	}
}

// stop ends the children in reverse start order: SIGTERM, then SIGKILL after 30s.
func (c *cluster) stop() {
	for i := len(c.children) - 1; i >= 0; i-- {
		ch := c.children[i]
		ch.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-ch.done:
		case <-time.After(30 * time.Second):
			fmt.Fprintf(os.Stderr, "up: %s ignored SIGTERM for 30s, killing it\n", ch.name)
			ch.cmd.Process.Kill()
			<-ch.done
		}
	}
	c.children = nil
}

// writeKubeconfig writes a kubeconfig for one bearer-token user of the lab cluster.
func writeKubeconfig(path, server, caFile, user, token string) error {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) } // JSON strings are YAML
	cfg := strings.Join([]string{
		"apiVersion: v1",
		"kind: Config",
		"clusters:",
		"- name: kubefence-lab",
		"  cluster:",
		"    server: " + q(server),
		"    certificate-authority: " + q(caFile),
		"users:",
		"- name: " + q(user),
		"  user:",
		"    token: " + q(token),
		"contexts:",
		"- name: kubefence-lab",
		"  context:",
		"    cluster: kubefence-lab",
		"    user: " + q(user),
		"current-context: kubefence-lab",
		"",
	}, "\n")
	return os.WriteFile(path, []byte(cfg), 0o600)
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// httpsClient trusts the lab CA only.
func httpsClient(caFile string) *http.Client {
	pool := x509.NewCertPool()
	if pem, err := os.ReadFile(caFile); err == nil {
		pool.AppendCertsFromPEM(pem)
	}
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
}

// get returns the status code of a GET (0 when it fails), with a bearer token if one is given.
func get(client *http.Client, url, token string) int {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// freePorts picks n distinct free ports on 127.0.0.1, holding each until all are picked.
func freePorts(n int) ([]int, error) {
	var ports []int
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		closers = append(closers, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
