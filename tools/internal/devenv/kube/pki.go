package kube

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki is a cluster's certificates and keys, generated fresh on every start:
// they are cheap (ECDSA P-256) and nothing outlives the cluster's state folder.
type pki struct {
	dir string

	ca      *x509.Certificate
	caKey   crypto.Signer
	caPEM   []byte
	admin   keyPair // O=system:masters
	ctrlMgr keyPair // CN=system:kube-controller-manager, bound by bootstrap RBAC
	sched   keyPair // CN=system:kube-scheduler, bound by bootstrap RBAC
	metrics keyPair // CN=system:metrics-server, bound by metricsRBAC
}

// keyPair is a PEM certificate and its key.
type keyPair struct{ cert, key []byte }

// Files of the pki folder that the control-plane flags name.
const (
	caCertFile         = "ca.crt"
	caKeyFile          = "ca.key"
	servingCert        = "apiserver.crt"
	servingKey         = "apiserver.key"
	saKeyFile          = "sa.key"
	saPubFile          = "sa.pub"
	frontProxyCACert   = "front-proxy-ca.crt"
	frontProxyCert     = "front-proxy-client.crt"
	frontProxyKey      = "front-proxy-client.key"
	frontProxyClient   = "front-proxy-client"
	metricsServingCert = "metrics-server.crt"
	metricsServingKey  = "metrics-server.key"
	certValidity       = 365 * 24 * time.Hour
	clockSkewSlop      = time.Hour
)

// newPKI writes a CA, the apiserver's serving certificate, the
// service-account signing key pair, client certificates, and the
// front-proxy CA and client the aggregation layer authenticates with.
func newPKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create pki folder: %w", err)
	}
	p := &pki{dir: dir}
	var err error
	if p.ca, p.caKey, p.caPEM, err = p.newCA("ca", "slipway-devstack-ca"); err != nil {
		return nil, err
	}
	if _, err := p.issue("apiserver", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{
			"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local",
		},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, net.ParseIP(serviceIP)},
	}); err != nil {
		return nil, err
	}
	client := func(name, cn string, orgs ...string) (keyPair, error) {
		return p.issue(name, &x509.Certificate{
			Subject:     pkix.Name{CommonName: cn, Organization: orgs},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})
	}
	if p.admin, err = client("admin", "slipway-admin", "system:masters"); err != nil {
		return nil, err
	}
	if p.ctrlMgr, err = client("controller-manager", "system:kube-controller-manager"); err != nil {
		return nil, err
	}
	if p.sched, err = client("scheduler", "system:kube-scheduler"); err != nil {
		return nil, err
	}
	if p.metrics, err = client("metrics-server-client", metricsServerUser); err != nil {
		return nil, err
	}
	// The aggregator verifies an APIService's server as <service>.<namespace>.svc.
	if _, err := p.issue("metrics-server", &x509.Certificate{
		Subject:     pkix.Name{CommonName: metricsServiceName},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{metricsServiceName, "localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}); err != nil {
		return nil, err
	}

	// A CA of its own, as kubeadm does: a certificate that lets its holder
	// assert any identity in headers must not come from the client CA.
	fpCA, fpKey, _, err := p.newCA("front-proxy-ca", "slipway-devstack-front-proxy-ca")
	if err != nil {
		return nil, err
	}
	if _, err := p.issueWith(fpCA, fpKey, "front-proxy-client", &x509.Certificate{
		Subject:     pkix.Name{CommonName: frontProxyClient},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return nil, err
	}

	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	saKeyPEM, err := keyPEM(saKey)
	if err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return nil, err
	}
	if err := p.write(saKeyFile, saKeyPEM); err != nil {
		return nil, err
	}
	if err := p.write(saPubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})); err != nil {
		return nil, err
	}
	return p, nil
}

// newCA writes a self-signed CA as <name>.crt and <name>.key.
func (p *pki) newCA(name, cn string) (*x509.Certificate, crypto.Signer, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-clockSkewSlop),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("create %s: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kPEM, err := keyPEM(key)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := p.write(name+".crt", certPEM); err != nil {
		return nil, nil, nil, err
	}
	if err := p.write(name+".key", kPEM); err != nil {
		return nil, nil, nil, err
	}
	return cert, key, certPEM, nil
}

// issue signs tmpl (subject, usages, SANs) with the cluster CA and writes
// <name>.crt and <name>.key.
func (p *pki) issue(name string, tmpl *x509.Certificate) (keyPair, error) {
	return p.issueWith(p.ca, p.caKey, name, tmpl)
}

// issueWith is issue with another CA.
func (p *pki) issueWith(ca *x509.Certificate, caKey crypto.Signer, name string, tmpl *x509.Certificate) (keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return keyPair{}, err
	}
	now := time.Now()
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = now.Add(-clockSkewSlop)
	tmpl.NotAfter = now.Add(certValidity)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return keyPair{}, fmt.Errorf("issue %s certificate: %w", name, err)
	}
	kp := keyPair{cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	if kp.key, err = keyPEM(key); err != nil {
		return keyPair{}, err
	}
	if err := p.write(name+".crt", kp.cert); err != nil {
		return keyPair{}, err
	}
	if err := p.write(name+".key", kp.key); err != nil {
		return keyPair{}, err
	}
	return kp, nil
}

func (p *pki) path(name string) string { return filepath.Join(p.dir, name) }

func (p *pki) write(name string, data []byte) error {
	if err := os.WriteFile(p.path(name), data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}
