package main

// The `etcd` subcommand: a single-member etcd embedded from go.etcd.io/etcd/server/v3/embed,
// serving plain HTTP on loopback only.

import (
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func runEtcd(args []string) int {
	fs := flag.NewFlagSet("etcd", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "directory for etcd's data (required)")
	client := fs.String("listen-client", "http://127.0.0.1:2379", "client URL (loopback only)")
	peer := fs.String("listen-peer", "", "peer URL (loopback only; default: a free port)")
	noFsync := fs.Bool("unsafe-no-fsync", false, "never fsync (faster; data may be lost on a crash)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dataDir == "" {
		fmt.Fprintln(os.Stderr, "etcd: --data-dir is required")
		return 2
	}
	if *peer == "" {
		port, err := freePort()
		if err != nil {
			fmt.Fprintln(os.Stderr, "etcd:", err)
			return 1
		}
		*peer = fmt.Sprintf("http://127.0.0.1:%d", port)
	}
	clientURL, err := loopbackURL(*client)
	if err == nil {
		var peerURL *url.URL
		if peerURL, err = loopbackURL(*peer); err == nil {
			err = serveEtcd(*dataDir, *clientURL, *peerURL, *noFsync)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd:", err)
		return 1
	}
	return 0
}

// serveEtcd runs etcd until SIGTERM or SIGINT, then closes it cleanly.
func serveEtcd(dataDir string, client, peer url.URL, noFsync bool) error {
	cfg := embed.NewConfig()
	cfg.Name = "lab"
	cfg.Dir = dataDir
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.UnsafeNoFsync = noFsync
	cfg.LogOutputs = []string{"stderr"}

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		return fmt.Errorf("not ready after 60s")
	}
	fmt.Fprintf(os.Stderr, "etcd: ready, serving %s\n", client.String())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	select {
	case sig := <-stop:
		fmt.Fprintf(os.Stderr, "etcd: %s, stopping\n", sig)
		return nil
	case err := <-e.Err():
		return err
	}
}

// loopbackURL parses an http URL and refuses any host but 127.0.0.1.
func loopbackURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("%s: only http:// URLs are served", s)
	}
	if u.Hostname() != "127.0.0.1" {
		return nil, fmt.Errorf("%s: only 127.0.0.1 may be listened on", s)
	}
	return u, nil
}

// freePort asks the kernel for a free TCP port on 127.0.0.1 and releases it at once.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
