package releases

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	slipstatus "github.com/slipwayhq/slipway/services/releases/internal/status"
)

// TestFailureClusterUnreachable: an operation that could not reach its
// cluster's API server ends UNAVAILABLE (it may work once the cluster is
// back), not INTERNAL; a timeout of the operation's own stays what it was.
func TestFailureClusterUnreachable(t *testing.T) {
	// A real request to a port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	c := &http.Client{Timeout: 5 * time.Second}
	_, refused := c.Get("https://" + addr + "/version")
	if refused == nil {
		t.Fatal("a closed port answered")
	}
	helmWrap := func(e error) error { return fmt.Errorf("upgrade shop/web: Kubernetes cluster unreachable: %w", e) }
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"refused", helmWrap(refused), "UNAVAILABLE"},
		{"TLS handshake timeout", helmWrap(&url.Error{Op: "Get", URL: "https://10.0.0.7/version", Err: errors.New("net/http: TLS handshake timeout")}), "UNAVAILABLE"},
		{"reset", fmt.Errorf("upgrade shop/web: %w", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}), "UNAVAILABLE"},
		{"helm's text only", errors.New("install shop/web: Kubernetes cluster unreachable: Get \"https://10.0.0.7/version\": EOF"), "UNAVAILABLE"},
		{"credentials rejected", helmWrap(apierrors.NewUnauthorized("the server has asked for the client to provide credentials")), "INTERNAL"},
		{"cancelled", fmt.Errorf("upgrade shop/web: %w", context.Canceled), "INTERNAL"},
		{"deadline", fmt.Errorf("upgrade shop/web: %w", context.DeadlineExceeded), "INTERNAL"},
		{"other", errors.New("upgrade shop/web: template: boom"), "INTERNAL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := failure(tc.err)
			if code != tc.want || msg != tc.err.Error() {
				t.Errorf("failure(%v) = %s %q, want %s with the error's text", tc.err, code, msg, tc.want)
			}
		})
	}
}

// TestCacheErrorNamesCluster: a status read of a cluster whose state is
// unknown (its API server does not answer) names the cluster and stays
// UNAVAILABLE.
func TestCacheErrorNamesCluster(t *testing.T) {
	r := Revision{Cluster: "cl_1", Namespace: "shop", Name: "web"}
	err := cacheError("edge", r, fmt.Errorf("%w: events of namespace shop: Event not listed yet", slipstatus.ErrUnknown))
	if !errors.Is(err, slipstatus.ErrUnknown) || !strings.Contains(err.Error(), "cluster edge") {
		t.Errorf("cacheError = %v, want it to name cluster edge and stay ErrUnknown", err)
	}
	if got := errorTable.ToStatus(err); !strings.Contains(got.Error(), "Unavailable") {
		t.Errorf("ToStatus = %v, want Unavailable", got)
	}
	other := cacheError("edge", r, errors.New("boom"))
	if !strings.Contains(other.Error(), "shop/web") {
		t.Errorf("cacheError(other) = %v, want it to name the release", other)
	}
}
