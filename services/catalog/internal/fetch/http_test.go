package fetch

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/pkg/outbound"
)

const indexYAML = "apiVersion: v1\nentries: {}\n"

func TestIndexConditional(t *testing.T) {
	modified := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	lm := modified.Format(http.TimeFormat)
	withETag := newServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "index.yaml", modified, strings.NewReader(indexYAML))
	})
	lastModifiedOnly := newServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "index.yaml", modified, strings.NewReader(indexYAML))
	})
	f := newFetcher(t, Options{Policy: policy(t, loopback...), AllowHTTP: true}, nil)
	full := IndexResponse{Body: []byte(indexYAML), ETag: `"v1"`, LastModified: lm}

	tests := []struct {
		name               string
		srv                *server
		etag, lastModified string
		want               IndexResponse
	}{
		{name: "first fetch", srv: withETag, want: full},
		{name: "same ETag", srv: withETag, etag: `"v1"`, want: IndexResponse{NotModified: true, ETag: `"v1"`}},
		{name: "other ETag", srv: withETag, etag: `"v0"`, lastModified: lm, want: full},
		{name: "Last-Modified", srv: lastModifiedOnly, lastModified: lm, want: IndexResponse{NotModified: true, LastModified: lm}},
		{name: "older Last-Modified", srv: lastModifiedOnly, lastModified: modified.Add(-time.Hour).Format(http.TimeFormat), want: IndexResponse{Body: []byte(indexYAML), LastModified: lm}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(tc.srv.requests())
			got, err := f.Index(t.Context(), tc.srv.URL+"/", nil, tc.etag, tc.lastModified, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if got.NotModified != tc.want.NotModified || !bytes.Equal(got.Body, tc.want.Body) || got.ETag != tc.want.ETag || got.LastModified != tc.want.LastModified {
				t.Errorf("Index = %+v, want %+v", got, tc.want)
			}
			reqs := tc.srv.requests()[before:]
			if len(reqs) != 1 || reqs[0].path != "/index.yaml" {
				t.Fatalf("the server got %+v, want one request for /index.yaml", reqs)
			}
			if h := reqs[0].header; h.Get("If-None-Match") != tc.etag || h.Get("If-Modified-Since") != tc.lastModified {
				t.Errorf("sent If-None-Match %q, If-Modified-Since %q; want %q, %q", h.Get("If-None-Match"), h.Get("If-Modified-Since"), tc.etag, tc.lastModified)
			}
		})
	}
}

// raw answers by writing resp on the hijacked connection, then waits for
// the client to hang up (or closes it itself when close is set).
func raw(resp string, closeAfter bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		_, _ = io.WriteString(conn, resp)
		if !closeAfter {
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, _ = io.Copy(io.Discard, conn)
		}
	}
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

func TestIndexSizeLimit(t *testing.T) {
	const max = 1024
	exact := strings.Repeat("a", max)
	over := strings.Repeat("a", max+1)
	random := make([]byte, 2*max)
	_, _ = rand.Read(random)
	write := func(body []byte, header ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i+1 < len(header); i += 2 {
				w.Header().Set(header[i], header[i+1])
			}
			_, _ = w.Write(body)
		}
	}
	endless := func(gz bool, chunk []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var out io.Writer = w
			if gz {
				w.Header().Set("Content-Encoding", "gzip")
				zw := gzip.NewWriter(w)
				out = zw
				if len(chunk) == 0 {
					// Empty sync blocks: compressed bytes decoding to nothing.
					for zw.Flush() == nil && r.Context().Err() == nil {
					}
					return
				}
			}
			for r.Context().Err() == nil {
				if _, err := out.Write(chunk); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		}
	}
	tests := []struct {
		name string
		h    http.HandlerFunc
		want string // the body, when accepted
		err  error
	}{
		{name: "exactly the limit", h: write([]byte(exact)), want: exact},
		{name: "over by Content-Length", h: write([]byte(over)), err: ErrTooLarge},
		{name: "over, chunked", h: endless(false, make([]byte, 100)), err: ErrTooLarge},
		{name: "gzip within the limit", h: write(gzipped([]byte(exact)), "Content-Encoding", "gzip"), want: exact},
		{name: "gzip decoding to more than the limit", h: write(gzipped(make([]byte, 100*max)), "Content-Encoding", "gzip"), err: ErrTooLarge},
		{name: "gzip compressed over the limit", h: write(gzipped(random), "Content-Encoding", "gzip"), err: ErrTooLarge},
		{name: "endless gzip", h: endless(true, make([]byte, 4096)), err: ErrTooLarge},
		{name: "endless empty gzip blocks", h: endless(true, nil), err: ErrTooLarge},
		{name: "corrupt gzip", h: write([]byte("this is not gzip at all"), "Content-Encoding", "gzip"), err: ErrBadResponse},
		{name: "encoding not asked for", h: write([]byte(exact), "Content-Encoding", "br"), err: ErrBadResponse},
		// The body is never read: a server claiming a gigabyte and sending
		// nothing would otherwise hold the request until the timeout.
		{name: "huge Content-Length, nothing sent", h: raw("HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n", false), err: ErrTooLarge},
		{name: "body longer than its Content-Length", h: raw("HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n"+strings.Repeat("a", 100*max), true), want: strings.Repeat("a", 10)},
		{name: "no Content-Length, read until close", h: raw("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"+strings.Repeat("a", 100*max), true), err: ErrTooLarge},
		{name: "body shorter than its Content-Length", h: raw("HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\nshort", true), err: ErrUnavailable},
	}
	f := newFetcher(t, Options{Policy: policy(t, loopback...), AllowHTTP: true, Timeout: 20 * time.Second}, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, false, tc.h)
			got, err := f.Index(t.Context(), srv.URL, nil, "", "", max)
			if tc.err != nil {
				wantErr(t, err, tc.err)
				if strings.Contains(err.Error(), "aaaa") {
					t.Errorf("the error %q quotes the body", err)
				}
				return
			}
			if err != nil || string(got.Body) != tc.want {
				t.Fatalf("Index = %d bytes, %v; want %d bytes", len(got.Body), err, len(tc.want))
			}
			if reqs := srv.requests(); len(reqs) == 1 && reqs[0].header.Get("Accept-Encoding") != "gzip" {
				t.Errorf("Accept-Encoding = %q, want gzip", reqs[0].header.Get("Accept-Encoding"))
			}
		})
	}
}

// counting is an endless reader counting what is read from it.
type counting struct{ n int64 }

func (c *counting) Read(p []byte) (int, error) {
	clear(p)
	c.n += int64(len(p))
	return len(p), nil
}

func TestReadBodyReadsAtMostTheLimitPlusOne(t *testing.T) {
	f := newFetcher(t, Options{Policy: policy(t)}, nil)
	for _, limit := range []int64{1, 1000, 64 << 10} {
		r := &counting{}
		_, err := f.readBody(t.Context(), r, -1, "charts.example.com", "index.yaml", limit, nil)
		wantErr(t, err, ErrTooLarge)
		if r.n > limit+1 {
			t.Errorf("limit %d: read %d bytes", limit, r.n)
		}
		r = &counting{}
		_, err = f.readBody(t.Context(), r, limit+1, "charts.example.com", "index.yaml", limit, nil)
		wantErr(t, err, ErrTooLarge)
		if r.n != 0 {
			t.Errorf("limit %d, Content-Length over it: read %d bytes, want none", limit, r.n)
		}
	}
}

func TestIndexErrors(t *testing.T) {
	const password = "hunter2-password"
	srv := newServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(strings.Trim(strings.TrimSuffix(r.URL.Path, "index.yaml"), "/"))
		if err != nil {
			code = http.StatusTeapot
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "SECRET-BODY %s", r.Header.Get("Authorization"))
	})
	host := srv.Listener.Addr().String()
	f := newFetcher(t, Options{Policy: policy(t, loopback...), AllowHTTP: true}, nil)
	login := &Auth{Username: "acme", Password: password}

	tests := []struct {
		code int
		auth *Auth
		err  error
		says string
	}{
		{code: 404, err: ErrNotFound, says: "answered HTTP 404 for index.yaml"},
		{code: 410, err: ErrNotFound, says: "answered HTTP 410"},
		{code: 401, err: ErrUnauthorized, says: "needs a login for index.yaml (HTTP 401)"},
		{code: 401, auth: login, err: ErrUnauthorized, says: "refused the repository's login for index.yaml (HTTP 401)"},
		{code: 403, auth: login, err: ErrUnauthorized, says: "(HTTP 403)"},
		{code: 429, err: ErrUnavailable, says: "rate limiting requests for index.yaml (HTTP 429)"},
		{code: 500, auth: login, err: ErrUnavailable, says: "answered HTTP 500"},
		{code: 503, err: ErrUnavailable, says: "answered HTTP 503"},
		{code: 418, err: ErrBadResponse, says: "answered HTTP 418"},
		{code: 304, err: ErrBadResponse, says: "answered HTTP 304"}, // no validators were sent
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d, login %t", tc.code, tc.auth != nil), func(t *testing.T) {
			_, err := f.Index(t.Context(), fmt.Sprintf("%s/%d", srv.URL, tc.code), tc.auth, "", "", 1<<20)
			wantErr(t, err, tc.err, password, "SECRET-BODY", "Basic ")
			if !strings.Contains(err.Error(), host) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q, want it to name %s and say %q", err, host, tc.says)
			}
		})
	}

	t.Run("nothing listening", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := l.Addr().String()
		_ = l.Close()
		_, err = f.Index(t.Context(), "http://"+closed, login, "", "", 1<<20)
		wantErr(t, err, ErrUnavailable, password)
		if !strings.Contains(err.Error(), closed) {
			t.Errorf("error %q does not name %s", err, closed)
		}
	})

	stalled := newServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/body/index.yaml" {
			w.Header().Set("Content-Length", "100")
			_, _ = io.WriteString(w, "apiVersion")
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
	})
	quick := newFetcher(t, Options{Policy: policy(t, loopback...), AllowHTTP: true, Timeout: 200 * time.Millisecond}, nil)
	for _, p := range []string{"/headers", "/body"} {
		t.Run("timeout waiting for the "+strings.Trim(p, "/"), func(t *testing.T) {
			_, err := quick.Index(t.Context(), stalled.URL+p, login, "", "", 1<<20)
			wantErr(t, err, ErrUnavailable, password)
			if !strings.Contains(err.Error(), "did not answer for index.yaml within 200ms") {
				t.Errorf("error %q, want it to say the server did not answer in time", err)
			}
		})
	}

	t.Run("untrusted certificate", func(t *testing.T) {
		tlsSrv := newServer(t, true, func(w http.ResponseWriter, r *http.Request) {})
		strict := newFetcher(t, Options{Policy: policy(t, loopback...)}, nil)
		_, err := strict.Index(t.Context(), tlsSrv.URL, nil, "", "", 1<<20)
		wantErr(t, err, ErrUnavailable)
		if !strings.Contains(err.Error(), "not trusted") {
			t.Errorf("error %q, want it to say the certificate is not trusted", err)
		}
		if n := len(tlsSrv.requests()); n != 0 {
			t.Errorf("the server got %d requests over a connection that failed", n)
		}
	})

	t.Run("OCI URL", func(t *testing.T) {
		_, err := f.Index(t.Context(), "oci://"+host+"/charts", nil, "", "", 1<<20)
		wantErr(t, err, ErrInvalidURL)
	})
}

// TestCredentialsStayWithTheRepository fetches an index and archives with
// each kind of login, from the repository's origin and elsewhere, and
// checks that the login reached exactly the requests for the origin.
func TestCredentialsStayWithTheRepository(t *testing.T) {
	var b *server
	handler := func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/moved/index.yaml":
			http.Redirect(w, r, b.URL+"/repo/index.yaml", http.StatusFound)
		case strings.Contains(r.URL.Path, "/redirect/"):
			http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
		case r.URL.Path == "/repo/index.yaml":
			_, _ = io.WriteString(w, indexYAML)
		default:
			_, _ = io.WriteString(w, "archive at "+r.URL.Path)
		}
	}
	a := newServer(t, true, handler)
	b = newServer(t, true, handler)
	ca := caPEM(a) // httptest's servers share one certificate
	cert, key := clientCert(t)
	f := newFetcher(t, Options{Policy: policy(t, loopback...)}, nil)
	bHost := b.Listener.Addr().String()

	logins := []struct {
		name string
		auth *Auth
		has  func(request) bool
	}{
		{"basic", &Auth{Username: "acme", Password: "hunter2", CAPEM: ca}, func(r request) bool {
			u, p, ok := (&http.Request{Header: r.header}).BasicAuth()
			return ok && u == "acme" && p == "hunter2"
		}},
		{"bearer", &Auth{BearerToken: "tok3n", CAPEM: ca}, func(r request) bool { return r.header.Get("Authorization") == "Bearer tok3n" }},
		{"client certificate", &Auth{ClientCertPEM: cert, ClientKeyPEM: key, CAPEM: ca}, func(r request) bool { return r.clientCert }},
	}
	redirect := func(to string) string { return "redirect/x?to=" + url.QueryEscape(to) }
	fetches := []struct {
		name     string
		repo     string // a.URL + "/repo" when empty
		chartURL string // the index when empty
		at       *server
		path     string
		keep     bool // whether the request for path has the login
	}{
		{name: "index", at: a, path: "/repo/index.yaml", keep: true},
		{name: "index moved to another origin", repo: a.URL + "/moved", at: b, path: "/repo/index.yaml"},
		{name: "relative archive", chartURL: "charts/hello-0.1.0.tgz", at: a, path: "/repo/charts/hello-0.1.0.tgz", keep: true},
		{name: "archive by absolute path", chartURL: "/elsewhere/hello-0.1.0.tgz", at: a, path: "/elsewhere/hello-0.1.0.tgz", keep: true},
		{name: "absolute archive URL at the origin", chartURL: a.URL + "/abs/hello-0.1.0.tgz", at: a, path: "/abs/hello-0.1.0.tgz", keep: true},
		{name: "archive on another port", chartURL: b.URL + "/b/hello-0.1.0.tgz?sig=abc", at: b, path: "/b/hello-0.1.0.tgz"},
		{name: "scheme-relative archive URL on another port", chartURL: "//" + bHost + "/b/rel.tgz", at: b, path: "/b/rel.tgz"},
		{name: "archive redirected to another origin", chartURL: redirect(b.URL + "/b/redirected.tgz"), at: b, path: "/b/redirected.tgz"},
		{name: "archive redirected within the origin", chartURL: redirect("/repo/final.tgz"), at: a, path: "/repo/final.tgz", keep: true},
	}
	for _, l := range logins {
		for _, fc := range fetches {
			t.Run(l.name+"/"+fc.name, func(t *testing.T) {
				beforeA, beforeB := len(a.requests()), len(b.requests())
				repo := fc.repo
				if repo == "" {
					repo = a.URL + "/repo"
				}
				var err error
				if fc.chartURL == "" {
					_, err = f.Index(t.Context(), repo, l.auth, "", "", 1<<20)
				} else {
					var body []byte
					body, err = f.Archive(t.Context(), repo, fc.chartURL, l.auth, 1<<20)
					if err == nil && string(body) != "archive at "+fc.path {
						t.Errorf("Archive = %q, want the archive at %s", body, fc.path)
					}
				}
				if err != nil {
					t.Fatal(err)
				}
				var found bool
				for _, at := range []*server{a, b} {
					before := beforeA
					if at == b {
						before = beforeB
					}
					for _, r := range at.requests()[before:] {
						// Every request to a is for the repository's origin.
						if want := at == a; l.has(r) != want {
							t.Errorf("request for %s at %s has the login: %t, want %t", r.path, at.URL, l.has(r), want)
						}
						if at == fc.at && r.path == fc.path {
							found = true
							if l.has(r) != fc.keep {
								t.Errorf("the request for %s has the login: %t, want %t", fc.path, l.has(r), fc.keep)
							}
						}
					}
				}
				if !found {
					t.Errorf("no request for %s reached %s", fc.path, fc.at.URL)
				}
			})
		}
	}
}

func TestArchive(t *testing.T) {
	archive := bytes.Repeat([]byte{0x1f, 0x8b, 0, 1}, 256)
	srv := newServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		// A .tgz labelled as gzip-encoded must still arrive as stored.
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = w.Write(archive)
	})
	f := newFetcher(t, Options{Policy: policy(t, loopback...), AllowHTTP: true}, nil)
	got, err := f.Archive(t.Context(), srv.URL, "hello-0.1.0.tgz", nil, int64(len(archive)))
	if err != nil || !bytes.Equal(got, archive) {
		t.Fatalf("Archive = %d bytes, %v; want the %d bytes served", len(got), err, len(archive))
	}
	if r := srv.requests()[0]; r.header.Get("Accept-Encoding") != "identity" || r.path != "/hello-0.1.0.tgz" {
		t.Errorf("request for %s with Accept-Encoding %q, want /hello-0.1.0.tgz with identity", r.path, r.header.Get("Accept-Encoding"))
	}
	_, err = f.Archive(t.Context(), srv.URL, "hello-0.1.0.tgz", nil, int64(len(archive))-1)
	wantErr(t, err, ErrTooLarge)
	if !strings.Contains(err.Error(), "archive hello-0.1.0.tgz") {
		t.Errorf("error %q does not name the archive", err)
	}
	for _, bad := range []string{"", "  ", "http://[::1/%zz"} {
		_, err = f.Archive(t.Context(), srv.URL, bad, nil, 1<<20)
		wantErr(t, err, ErrInvalidURL)
	}
}

// TestErrorsGiveNothingAway checks that no error repeats a password, a
// token, a query string or a response body.
func TestErrorsGiveNothingAway(t *testing.T) {
	const secret = "S3CRET"
	srv := newServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/repo/index.yaml":
			w.WriteHeader(http.StatusUnauthorized)
		case "/repo/redirect":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data?token="+secret, http.StatusFound)
		case "/repo/slow.tgz":
			<-r.Context().Done()
			return
		default:
			w.WriteHeader(http.StatusNotFound)
		}
		// Servers echo what they got; none of it may reach the message.
		fmt.Fprintf(w, "%s %s %s", r.URL.RawQuery, r.Header.Get("Authorization"), secret)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close()
	f := newFetcher(t, Options{Policy: policy(t, loopback...), AllowHTTP: true, Timeout: 300 * time.Millisecond}, nil)
	repo := srv.URL + "/repo"
	auth := &Auth{Username: "acme", Password: secret + "-password"}
	bearer := &Auth{BearerToken: secret + "-token"}

	tests := []struct {
		name  string
		fetch func() error
		err   error
	}{
		{"index, login refused", func() error { _, err := f.Index(t.Context(), repo, auth, "", "", 1<<20); return err }, ErrUnauthorized},
		{"index, bearer refused", func() error { _, err := f.Index(t.Context(), repo, bearer, "", "", 1<<20); return err }, ErrUnauthorized},
		{"archive missing", func() error {
			_, err := f.Archive(t.Context(), repo, "hello.tgz?X-Amz-Signature="+secret, auth, 1<<20)
			return err
		}, ErrNotFound},
		{"archive on a closed port", func() error {
			_, err := f.Archive(t.Context(), repo, "http://"+closed+"/hello.tgz?sig="+secret, auth, 1<<20)
			return err
		}, ErrUnavailable},
		{"archive timing out", func() error {
			_, err := f.Archive(t.Context(), repo, "slow.tgz?sig="+secret, auth, 1<<20)
			return err
		}, ErrUnavailable},
		{"archive redirected to metadata", func() error {
			_, err := f.Archive(t.Context(), repo, "redirect?sig="+secret, auth, 1<<20)
			return err
		}, outbound.ErrDenied},
		{"archive URL with credentials", func() error {
			_, err := f.Archive(t.Context(), repo, "http://acme:"+secret+"@"+closed+"/hello.tgz", auth, 1<<20)
			return err
		}, outbound.ErrDenied},
		{"archive URL that does not parse", func() error {
			_, err := f.Archive(t.Context(), repo, "http://[::1/%zz?sig="+secret, auth, 1<<20)
			return err
		}, ErrInvalidURL},
		{"repository URL with a query", func() error {
			_, err := f.Index(t.Context(), repo+"?token="+secret, auth, "", "", 1<<20)
			return err
		}, ErrInvalidURL},
		{"repository URL with credentials", func() error {
			_, err := f.Index(t.Context(), "http://acme:"+secret+"@"+srv.Listener.Addr().String(), nil, "", "", 1<<20)
			return err
		}, outbound.ErrDenied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.fetch(), tc.err, secret, "Basic ", "Bearer ")
		})
	}
}
