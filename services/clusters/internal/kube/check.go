package kube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/discovery"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
)

// Reachability is what a Check found out about an API server.
type Reachability int

const (
	Unknown      Reachability = iota // not checked, or the config could not be used
	Reachable                        // answered and accepted the credential
	Unreachable                      // no answer: DNS, connection, TLS, timeout, or not an API server
	Unauthorized                     // answered and rejected the credential (401 or 403)
)

func (r Reachability) String() string {
	switch r {
	case Reachable:
		return "reachable"
	case Unreachable:
		return "unreachable"
	case Unauthorized:
		return "unauthorized"
	}
	return "unknown"
}

// Health is the outcome of a Check. Message is empty when there is nothing
// to add to Reachability, else a short reason that never holds a
// credential.
type Health struct {
	Reachability Reachability
	Version      string // the server's gitVersion, e.g. "v1.31.4"
	Nodes        int
	Message      string
	CheckedAt    time.Time
}

// Permissions are what Slipway needs to deploy with the credential: Helm
// creates release namespaces and stores releases as Secrets.
type Permissions struct {
	CreateNamespaces bool // cluster-wide
	CreateSecrets    bool // in all namespaces
}

// nodePage is how many nodes one list call returns.
const nodePage = 500

var nodesResource = schema.GroupVersionResource{Version: "v1", Resource: "nodes"}

// Check asks the API server of cfg for its version, counts its nodes and
// reviews the credential's permissions, within ctx and requestTimeout per
// call. It never fails: an unreachable server is a Health too.
func Check(ctx context.Context, cfg *rest.Config) (Health, Permissions) {
	h, p := check(ctx, cfg)
	h.CheckedAt = time.Now()
	if cfg != nil {
		h.Message = scrub(h.Message, cfg)
	}
	return h, p
}

func check(ctx context.Context, cfg *rest.Config) (Health, Permissions) {
	if cfg == nil {
		return Health{Reachability: Unknown, Message: "no client configuration"}, Permissions{}
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return Health{Reachability: Unknown, Message: "client configuration not usable"}, Permissions{}
	}
	// The transport is not cached (the config has a Proxy func), so its
	// idle connections would linger until they time out.
	defer hc.CloseIdleConnections()

	dc, err := discovery.NewDiscoveryClientForConfigAndClient(cfg, hc)
	if err != nil {
		return Health{Reachability: Unknown, Message: "client configuration not usable"}, Permissions{}
	}
	var info *version.Info
	if err := call(ctx, func(ctx context.Context) error {
		info, err = dc.ServerVersionWithContext(ctx)
		return err
	}); err != nil {
		r, msg := classify(err)
		return Health{Reachability: r, Message: msg}, Permissions{}
	}
	if info.GitVersion == "" {
		return Health{Reachability: Unreachable, Message: "not a Kubernetes API server (no version)"}, Permissions{}
	}

	h := Health{Reachability: Reachable, Version: info.GitVersion}
	var p Permissions
	var nodesErr, nsErr, secretsErr error
	var wg sync.WaitGroup
	wg.Go(func() { h.Nodes, nodesErr = countNodes(ctx, cfg, hc) })
	wg.Go(func() { p.CreateNamespaces, nsErr = allowed(ctx, cfg, hc, "namespaces") })
	wg.Go(func() { p.CreateSecrets, secretsErr = allowed(ctx, cfg, hc, "secrets") })
	wg.Wait()

	var notes []string
	if nodesErr != nil {
		h.Nodes = 0
		if apierrors.IsForbidden(nodesErr) {
			notes = append(notes, "not allowed to list nodes")
		} else {
			_, msg := classify(nodesErr)
			notes = append(notes, "counting nodes failed: "+msg)
		}
	}
	if err := errors.Join(nsErr, secretsErr); err != nil {
		_, msg := classify(err)
		notes = append(notes, "checking permissions failed: "+msg)
	}
	h.Message = strings.Join(notes, "; ")
	return h, p
}

// call runs f within ctx and requestTimeout, whichever ends first.
func call(ctx context.Context, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return f(ctx)
}

// countNodes lists node metadata only, a page at a time, so that a large
// cluster costs a few small responses.
func countNodes(ctx context.Context, cfg *rest.Config, hc *http.Client) (int, error) {
	mc, err := metadata.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return 0, err
	}
	n := 0
	opts := metav1.ListOptions{Limit: nodePage}
	for {
		var list *metav1.PartialObjectMetadataList
		if err := call(ctx, func(ctx context.Context) error {
			list, err = mc.Resource(nodesResource).List(ctx, opts)
			return err
		}); err != nil {
			return 0, err
		}
		n += len(list.Items)
		if list.Continue == "" {
			return n, nil
		}
		opts.Continue = list.Continue
	}
}

// allowed asks whether the credential may create resource (a core
// resource) in every namespace, or cluster-wide for cluster-scoped ones.
func allowed(ctx context.Context, cfg *rest.Config, hc *http.Client, resource string) (bool, error) {
	ac, err := authorizationv1client.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return false, err
	}
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "create", Resource: resource},
	}}
	var res *authorizationv1.SelfSubjectAccessReview
	if err := call(ctx, func(ctx context.Context) error {
		res, err = ac.SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		return err
	}); err != nil {
		return false, err
	}
	return res.Status.Allowed, nil
}

// classify turns a failed call into a Reachability and a short message
// made from the error's kind, not its text: client-go's texts carry URLs
// and nested causes that are long and unhelpful to a user.
func classify(err error) (Reachability, string) {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		code := status.Status().Code
		switch code {
		case http.StatusUnauthorized, http.StatusForbidden:
			return Unauthorized, fmt.Sprintf("credentials rejected (%d)", code)
		}
		if code == 0 {
			return Unreachable, "unexpected response"
		}
		return Unreachable, fmt.Sprintf("unexpected response (HTTP %d)", code)
	}

	var (
		dnsErr      *net.DNSError
		unknownCA   x509.UnknownAuthorityError
		hostnameErr x509.HostnameError
		invalidCert x509.CertificateInvalidError
		alert       tls.AlertError
		recordErr   tls.RecordHeaderError
		netErr      net.Error
		opErr       *net.OpError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return Unreachable, "timed out"
	case errors.Is(err, context.Canceled):
		return Unreachable, "check cancelled"
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return Unreachable, "DNS: no such host"
		}
		return Unreachable, "DNS lookup failed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return Unreachable, "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return Unreachable, "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return Unreachable, "no route to host"
	case errors.As(err, &unknownCA):
		return Unreachable, "x509: certificate signed by unknown authority"
	case errors.As(err, &hostnameErr):
		return Unreachable, hostnameErr.Error()
	case errors.As(err, &invalidCert):
		return Unreachable, invalidCert.Error()
	case errors.As(err, &alert):
		return Unreachable, "TLS handshake rejected by the server: " + alert.Error()
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// Over TCP, crypto/tls reports the server's alert this way, not as
		// a tls.AlertError (that is for alerts it sends, and for QUIC).
		return Unreachable, "TLS handshake rejected by the server: " + short(opErr.Err)
	case errors.As(err, &recordErr), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return Unreachable, "server does not speak TLS"
	case errors.As(err, &netErr) && netErr.Timeout():
		return Unreachable, "timed out"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		// The caller's dial func (its outbound policy) wrote this error.
		return Unreachable, "connection failed: " + short(opErr.Err)
	case strings.HasPrefix(err.Error(), "unable to parse the server version"):
		// discovery formats the JSON error with %v, so only its text tells.
		return Unreachable, "not a Kubernetes API server (unreadable version)"
	}
	return Unreachable, "connection failed: " + short(err)
}

// short cuts an error text to one line of reasonable length.
func short(err error) string {
	if err == nil {
		return ""
	}
	s, _, _ := strings.Cut(err.Error(), "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// scrub removes the credential from a message, should a cause ever quote
// it: defence in depth for what ends up in the clusters table.
func scrub(msg string, cfg *rest.Config) string {
	for _, secret := range []string{cfg.BearerToken, cfg.Password, string(cfg.KeyData)} {
		if len(secret) >= 4 && strings.Contains(msg, secret) {
			msg = strings.ReplaceAll(msg, secret, "[redacted]")
		}
	}
	return msg
}
