package main

// Credentials for `up`, made with Go's crypto (no openssl): a self-signed CA, the apiserver's
// serving certificate, the service-account key pair and static bearer tokens. Each file is
// made only if missing, so a directory can be started again with the same identities.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// serviceIP is the first address of serviceCIDR: the `kubernetes` Service's cluster IP.
const (
	serviceCIDR = "10.96.0.0/16"
	serviceIP   = "10.96.0.1"
)

// pki holds the paths of the credential files in a cluster directory.
type pki struct {
	CACert, CAKey, ServingCert, ServingKey, SAKey, SAPub, TokenFile string
	// Bearer tokens of the three users in TokenFile.
	AdminToken, ControllerManagerToken, SchedulerToken string
}

// ensurePKI makes whatever credential files are missing in dir and returns all their paths.
func ensurePKI(dir string) (*pki, error) {
	p := &pki{
		CACert: filepath.Join(dir, "ca.crt"), CAKey: filepath.Join(dir, "ca.key"),
		ServingCert: filepath.Join(dir, "apiserver.crt"), ServingKey: filepath.Join(dir, "apiserver.key"),
		SAKey: filepath.Join(dir, "sa.key"), SAPub: filepath.Join(dir, "sa.pub"),
		TokenFile: filepath.Join(dir, "tokens.csv"),
	}
	if !exists(p.CACert) || !exists(p.CAKey) {
		if err := newCA(p.CACert, p.CAKey); err != nil {
			return nil, err
		}
		os.Remove(p.ServingCert) // signed by a CA that is gone
	}
	if !exists(p.ServingCert) || !exists(p.ServingKey) {
		if err := newServingCert(p); err != nil {
			return nil, err
		}
	}
	if !exists(p.SAKey) || !exists(p.SAPub) {
		if err := newSAKeys(p.SAKey, p.SAPub); err != nil {
			return nil, err
		}
	}
	var err error
	tok := func(name string) string {
		var t string
		if err == nil {
			t, err = ensureToken(filepath.Join(dir, name+".token"))
		}
		return t
	}
	p.AdminToken, p.ControllerManagerToken, p.SchedulerToken = tok("admin"), tok("controller-manager"), tok("scheduler")
	if err != nil {
		return nil, err
	}
	// token,user,uid,"groups": the controller-manager and the scheduler get the users that
	// the bootstrap RBAC policy binds their roles to.
	csv := fmt.Sprintf("%s,kubefence-admin,kubefence-admin,\"system:masters\"\n"+
		"%s,system:kube-controller-manager,system:kube-controller-manager\n"+
		"%s,system:kube-scheduler,system:kube-scheduler\n",
		p.AdminToken, p.ControllerManagerToken, p.SchedulerToken)
	return p, os.WriteFile(p.TokenFile, []byte(csv), 0o600)
}

func newCA(certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "kubefence-lab-ca"},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := sign(tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	return writeCertAndKey(certPath, keyPath, der, key)
}

func newServingCert(p *pki) error {
	ca, caKey, err := loadCA(p.CACert, p.CAKey)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(serviceIP)},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
	}
	der, err := sign(tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	return writeCertAndKey(p.ServingCert, p.ServingKey, der, key)
}

// newSAKeys makes the RSA key pair that signs (private) and verifies (public) service-account
// tokens.
func newSAKeys(keyPath, pubPath string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := writePEM(keyPath, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key)); err != nil {
		return err
	}
	return writePEM(pubPath, "PUBLIC KEY", pub)
}

// sign issues a certificate valid from an hour ago for ten years.
func sign(tmpl, parent *x509.Certificate, pub any, signer any) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(10 * 365 * 24 * time.Hour)
	return x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
}

func loadCA(certPath, keyPath string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certDER, err := readPEM(certPath)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := readPEM(keyPath)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.ParseECPrivateKey(keyDER)
	return cert, key, err
}

func writeCertAndKey(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := writePEM(keyPath, "EC PRIVATE KEY", keyDER); err != nil {
		return err
	}
	return writePEM(certPath, "CERTIFICATE", der)
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

func readPEM(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	return block.Bytes, nil
}

// ensureToken returns the token stored at path, first making a random one if there is none.
func ensureToken(path string) (string, error) {
	if data, err := os.ReadFile(path); err == nil && len(data) > 0 {
		return string(data), nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	t := hex.EncodeToString(b)
	return t, os.WriteFile(path, []byte(t), 0o600)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
