// Package kube parses, sanitizes and checks connections to the Kubernetes
// API servers that organizations register.
//
// A Connection is deliberately narrower than a kubeconfig: an https server,
// inline CA data and exactly one inline credential. Everything that would
// make the server run a program, read a local file, act as another identity
// or route around the outbound policy is refused when a Connection is made,
// so code holding one never has to ask again.
package kube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ErrInvalid is wrapped by every parse and validation error. The messages
// name the field and the problem, never a secret value.
var ErrInvalid = errors.New("invalid kubernetes connection")

// invalidError carries its own message so that it reads as written, without
// ErrInvalid's text appended, while errors.Is still finds ErrInvalid.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }
func (e *invalidError) Unwrap() error { return ErrInvalid }

func invalid(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// Connection is everything needed to reach one API server. It holds
// secrets: String, Format, LogValue and MarshalJSON keep them out of logs,
// %v and JSON. Kubeconfig is the one way to serialize it.
//
// Exactly one credential: a bearer token or a client certificate with its
// key. With both, client-go sends both and the API server picks the
// identity (x509 before tokens), so health and permission checks could
// describe another identity than the one the user meant to register.
type Connection struct {
	Server        string // https URL, no userinfo, query or fragment
	CAPEM         []byte // PEM certificates; empty means the system roots
	TLSServerName string // overrides the name the server certificate must carry
	BearerToken   string
	ClientCertPEM []byte
	ClientKeyPEM  []byte
}

// NewConnection validates its arguments into a Connection. Field names in
// errors are the kubeconfig's, so both constructors read alike.
func NewConnection(server string, caPEM []byte, tlsServerName, bearerToken string, certPEM, keyPEM []byte) (Connection, error) {
	c := Connection{
		Server: server, CAPEM: caPEM, TLSServerName: tlsServerName,
		BearerToken: bearerToken, ClientCertPEM: certPEM, ClientKeyPEM: keyPEM,
	}
	if problems := c.problems(); len(problems) > 0 {
		return Connection{}, invalid("connection: %s", strings.Join(problems, "; "))
	}
	return c, nil
}

// problems lists what is wrong with c; ParseKubeconfig prefixes them with
// the cluster or user they belong to.
func (c Connection) problems() []string {
	return append(c.clusterProblems(), c.userProblems()...)
}

func (c Connection) clusterProblems() []string {
	var p []string
	if msg := checkServer(c.Server); msg != "" {
		p = append(p, "server: "+msg)
	}
	if len(c.CAPEM) > 0 {
		if msg := checkCertificates(c.CAPEM); msg != "" {
			p = append(p, "certificate-authority-data: "+msg)
		}
	}
	if c.TLSServerName != "" && !validServerName(c.TLSServerName) {
		p = append(p, "tls-server-name: must be a DNS name or an IP address")
	}
	return p
}

func (c Connection) userProblems() []string {
	hasCert := len(c.ClientCertPEM) > 0 || len(c.ClientKeyPEM) > 0
	switch {
	case c.BearerToken == "" && !hasCert:
		return []string{"no credential (token or client certificate): anonymous access is not allowed"}
	case c.BearerToken != "" && hasCert:
		return []string{"has both a token and a client certificate: keep one, the API server would pick which identity applies"}
	case c.BearerToken != "":
		if !validToken(c.BearerToken) {
			return []string{"token: must be printable ASCII without spaces or line breaks"}
		}
		return nil
	}
	if len(c.ClientCertPEM) == 0 {
		return []string{"client-key-data without client-certificate-data"}
	}
	if len(c.ClientKeyPEM) == 0 {
		return []string{"client-certificate-data without client-key-data"}
	}
	if msg := checkCertificates(c.ClientCertPEM); msg != "" {
		return []string{"client-certificate-data: " + msg}
	}
	if !isPrivateKeyPEM(c.ClientKeyPEM) {
		return []string{"client-key-data: not an unencrypted PEM private key (PKCS#1, PKCS#8 or EC)"}
	}
	// tls.X509KeyPair's own messages can quote PEM block types from the
	// input, so only its verdict is used.
	if _, err := tls.X509KeyPair(c.ClientCertPEM, c.ClientKeyPEM); err != nil {
		return []string{"client-key-data: does not match client-certificate-data"}
	}
	return nil
}

// checkServer returns what is wrong with an API server URL, or "". The URL
// itself is never quoted: its userinfo or query could hold a credential.
func checkServer(s string) string {
	if s == "" {
		return "missing"
	}
	if len(s) > 2048 {
		return "longer than 2048 characters"
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Opaque != "":
		return "not a valid URL"
	case u.Scheme != "https":
		return "must be an https:// URL"
	case u.User != nil:
		return "must not carry a user or password"
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return "must not have a query or fragment"
	case u.Hostname() == "":
		return "has no host"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "has an invalid port"
		}
	}
	return ""
}

// checkCertificates returns what is wrong with a PEM bundle of
// certificates, or "". Text around the blocks is tolerated (CA bundles
// often carry comments); a block of any other type is not, because a key
// pasted into a certificate field would otherwise be kept as non-secret.
func checkCertificates(data []byte) string {
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		n++
		if b.Type != "CERTIFICATE" {
			return fmt.Sprintf("PEM block %d is not a CERTIFICATE", n)
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Sprintf("PEM block %d is not a valid X.509 certificate", n)
		}
	}
	if n == 0 {
		return "no PEM certificate found"
	}
	return ""
}

func isPrivateKeyPEM(data []byte) bool {
	b, rest := pem.Decode(data)
	if b == nil || len(strings.TrimSpace(string(rest))) > 0 || len(b.Headers) > 0 {
		return false
	}
	switch b.Type {
	case "PRIVATE KEY":
		_, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		return err == nil
	case "RSA PRIVATE KEY":
		_, err := x509.ParsePKCS1PrivateKey(b.Bytes)
		return err == nil
	case "EC PRIVATE KEY":
		_, err := x509.ParseECPrivateKey(b.Bytes)
		return err == nil
	}
	return false
}

// validToken accepts what can travel in an Authorization header unchanged:
// a pasted token with a trailing newline is refused rather than trimmed, so
// what is stored is exactly what was checked.
func validToken(t string) bool {
	for i := 0; i < len(t); i++ {
		if t[i] < 0x21 || t[i] > 0x7e {
			return false
		}
	}
	return true
}

func validServerName(s string) bool {
	if net.ParseIP(s) != nil {
		return true
	}
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			ch := label[i]
			if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
				return false
			}
		}
	}
	return true
}

// Kubeconfig renders c as a self-contained kubeconfig whose cluster,
// context and user are all called name: what an org admin downloads and
// what ParseKubeconfig reads back into the same Connection.
func (c Connection) Kubeconfig(name string) ([]byte, error) {
	if name == "" {
		return nil, invalid("kubeconfig: name is empty")
	}
	if problems := c.problems(); len(problems) > 0 {
		return nil, invalid("connection: %s", strings.Join(problems, "; "))
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{
		Server: c.Server, CertificateAuthorityData: c.CAPEM, TLSServerName: c.TLSServerName,
	}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{
		Token: c.BearerToken, ClientCertificateData: c.ClientCertPEM, ClientKeyData: c.ClientKeyPEM,
	}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	cfg.CurrentContext = name
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		// Encoding errors name Go types, not values; still, keep them out.
		return nil, errors.New("kubeconfig: encode failed")
	}
	return out, nil
}

// Client settings of RESTConfig.
const (
	// requestTimeout bounds every request, so a server that accepts
	// connections and then stalls cannot hold a worker. Watches and log
	// streams outlive it: copy the config and set Timeout to 0 for those.
	requestTimeout = 10 * time.Second
	// client-go's default 5 QPS / burst 10 throttles concurrent Helm
	// operations more than the API server does (see DESIGN.md); 50/100
	// lets several run at once while one replica still cannot flood a
	// tenant's API server. The limiter is per client built from the config.
	clientQPS   = 50
	clientBurst = 100
	userAgent   = "slipway-clusters"
)

// RESTConfig is a client-go config for c. Every connection is made with
// dial, so the caller's outbound policy sees every address; proxies from
// the environment are ignored, since a proxy would be dialed instead of
// the server and so escape that policy. Requests to any other host than
// the server's (a redirect) fail before they are sent, because client-go
// would attach the credential to them.
//
// A nil dial refuses every connection rather than falling back to an
// unchecked dialer.
func (c Connection) RESTConfig(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *rest.Config {
	if dial == nil {
		dial = func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("kube: no dialer configured")
		}
	}
	host := ""
	if u, err := url.Parse(c.Server); err == nil {
		host = u.Host
	}
	return &rest.Config{
		Host:        c.Server,
		BearerToken: c.BearerToken,
		TLSClientConfig: rest.TLSClientConfig{
			ServerName: c.TLSServerName,
			CAData:     c.CAPEM,
			CertData:   c.ClientCertPEM,
			KeyData:    c.ClientKeyPEM,
		},
		Dial:          dial,
		Proxy:         func(*http.Request) (*url.URL, error) { return nil, nil },
		WrapTransport: func(rt http.RoundTripper) http.RoundTripper { return pinHost{host: host, next: rt} },
		QPS:           clientQPS,
		Burst:         clientBurst,
		Timeout:       requestTimeout,
		UserAgent:     userAgent,
	}
}

// pinHost refuses requests to anything but the API server: client-go adds
// the bearer token above this layer and presents the client certificate
// below it, so without it a redirect would carry them to another host.
type pinHost struct {
	host string
	next http.RoundTripper
}

func (p pinHost) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "https" || !strings.EqualFold(r.URL.Host, p.host) {
		return nil, fmt.Errorf("kube: request to %s refused: only the API server may be contacted", r.URL.Redacted())
	}
	return p.next.RoundTrip(r)
}

// credential names the kind of credential, for logs.
func (c Connection) credential() string {
	switch {
	case c.BearerToken != "" && len(c.ClientCertPEM) > 0:
		return "token+client-certificate"
	case c.BearerToken != "":
		return "token"
	case len(c.ClientCertPEM) > 0:
		return "client-certificate"
	}
	return "none"
}

// safeServer is the server URL without userinfo, query or fragment, for a
// Connection that was built by hand rather than validated.
func (c Connection) safeServer() string {
	u, err := url.Parse(c.Server)
	if err != nil {
		return "(invalid)"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

// String names the server and the kind of credential, never a secret.
func (c Connection) String() string {
	return fmt.Sprintf("kube.Connection{Server: %q, Credential: %s, secrets redacted}", c.safeServer(), c.credential())
}

// Format makes every verb, %#v and %+v included, print String.
func (c Connection) Format(f fmt.State, _ rune) { _, _ = fmt.Fprint(f, c.String()) }

// LogValue logs the server and the kind of credential.
func (c Connection) LogValue() slog.Value {
	return slog.GroupValue(slog.String("server", c.safeServer()), slog.String("credential", c.credential()))
}

// MarshalJSON fails: a Connection in a JSON document is a leak or a lossy
// copy. Kubeconfig serializes it on purpose.
func (c Connection) MarshalJSON() ([]byte, error) {
	return nil, errors.New("kube.Connection holds secrets and is not JSON-encoded; use Kubeconfig")
}
