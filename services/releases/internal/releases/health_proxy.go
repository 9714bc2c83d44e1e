package releases

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipwayhq/slipway/services/releases/internal/helmexec"
)

// Bounds of the requests to pods through the API server's pod proxy.
const (
	// proxyTimeout bounds one request, answer included.
	proxyTimeout = 3 * time.Second
	// proxyPods bounds the pods asked per call (health probes, Prometheus
	// scrapes).
	proxyPods = 10
	// snippetBytes bounds the body quoted in an unhealthy answer's message.
	snippetBytes = 256
	// scrapeBytes bounds a Prometheus answer kept.
	scrapeBytes = 256 << 10
	// statusBytes bounds the API server's own error read.
	statusBytes = 16 << 10
)

// PodHTTP reaches a cluster's API server over HTTP with the cluster's
// credential: helmexec.Executor.HTTP.
type PodHTTP func(helmexec.Access) (*http.Client, *url.URL, error)

// proxyAnswer is what came back from a GET through the pod proxy.
type proxyAnswer struct {
	// Code is the pod's HTTP status; 0 when the answer did not come from
	// the pod (the API server's own error, a timeout).
	Code int
	// Body is at most the limit asked of the pod's body; Truncated when
	// there was more.
	Body      []byte
	Truncated bool
	// Message says why there is no answer from the pod, when Code is 0.
	Message string
	Latency time.Duration
}

// proxyGet asks GET path (with its query) of port of a pod through the API
// server at base, reading at most limit bytes of the answer.
func proxyGet(ctx context.Context, hc *http.Client, base *url.URL, ns, pod, port, path string, limit int) proxyAnswer {
	if err := proxyPath(path); err != nil {
		return proxyAnswer{Message: err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, proxyTimeout)
	defer cancel()
	// The path goes as the application wrote it (the catalog checked it:
	// absolute, no spaces, no fragment), escapes included.
	u := strings.TrimSuffix(base.String(), "/") + "/api/v1/namespaces/" + ns + "/pods/" + pod + ":" + port + "/proxy" + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return proxyAnswer{Message: "bad request: " + err.Error()}
	}
	// The pod's redirects are its answer, not to be followed (a 3xx is
	// healthy, as for the kubelet's probes).
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		a := proxyAnswer{Latency: time.Since(start), Message: "no answer: " + transportError(err)}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			a.Message = fmt.Sprintf("no answer within %s", proxyTimeout)
		}
		return a
	}
	defer func() { _ = resp.Body.Close() }() // a read-only GET: nothing to report
	// Enough to read the API server's own error whole.
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(max(limit, statusBytes))+1))
	a := proxyAnswer{Latency: time.Since(start)}
	if err != nil {
		a.Message = fmt.Sprintf("answer %d cut short: %s", resp.StatusCode, transportError(err))
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			a.Message = fmt.Sprintf("answer %d not read within %s", resp.StatusCode, proxyTimeout)
		}
		return a
	}
	if msg, ok := apiServerError(resp, body); ok {
		a.Message = msg
		return a
	}
	a.Code = resp.StatusCode
	if len(body) > limit {
		a.Body, a.Truncated = body[:limit], true
	} else {
		a.Body = body
	}
	return a
}

// proxyPath refuses a path that could reach past the pod's proxy path on
// the API server (the catalog refuses them already): a path must be
// absolute, with no "." or ".." segment, no percent-encoding before its
// query, no fragment, backslash or space.
func proxyPath(path string) error {
	before, _, _ := strings.Cut(path, "?")
	bad := !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") || strings.Contains(before, "%") ||
		strings.ContainsAny(path, "#\\") || strings.ContainsFunc(path, func(r rune) bool { return r <= ' ' || r == 0x7f })
	for _, seg := range strings.Split(before, "/") {
		bad = bad || seg == "." || seg == ".."
	}
	if bad {
		return fmt.Errorf("path %q not asked: it is not a plain absolute path", path)
	}
	return nil
}

// transportError is err without the request's URL, which says nothing the
// caller does not know.
func transportError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// apiServerError reports an answer of the API server itself (it could not
// reach the pod, the pod does not exist, the credential may not use the
// proxy): a metav1.Status in JSON, rather than the pod's answer.
func apiServerError(resp *http.Response, body []byte) (string, bool) {
	if resp.StatusCode < 400 {
		return "", false
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "application/json" {
		return "", false
	}
	var st metav1.Status
	if err := json.Unmarshal(body, &st); err != nil || st.Kind != "Status" || st.APIVersion != "v1" || st.Status != metav1.StatusFailure {
		return "", false
	}
	return "API server: " + st.Message, true
}

// snippet is the start of a body for a message: valid UTF-8 on one line.
func snippet(b []byte) string {
	if len(b) > snippetBytes {
		b = b[:snippetBytes]
	}
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "\uFFFD")), " ")
	return s
}

// podPort resolves a declared port for a pod: a number as it is, a name
// as the pod's container port of that name.
func podPort(p *corev1.Pod, port string) (string, error) {
	if _, err := strconv.Atoi(port); err == nil {
		return port, nil
	}
	if p != nil {
		for _, c := range p.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.Name == port {
					return strconv.Itoa(int(cp.ContainerPort)), nil
				}
			}
		}
	}
	return "", fmt.Errorf("no container port named %q", port)
}

// eachPod runs f for each of n pods, at most proxyPods at once.
func eachPod(n int, f func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, proxyPods)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}

// exposition keeps what a Prometheus endpoint answered as text: valid
// UTF-8, cut at the last line's end when truncated.
func exposition(b []byte, truncated bool) string {
	if truncated {
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			b = b[:i+1]
		}
	}
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}
