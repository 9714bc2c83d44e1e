package fetch

import (
	"compress/flate"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/slipwayhq/slipway/pkg/outbound"
)

// IndexResponse is the answer to an index request.
type IndexResponse struct {
	// NotModified: the server answered 304 to the validators given; Body
	// is empty and the validators are those given unless the server sent
	// new ones.
	NotModified bool
	Body        []byte
	// ETag and LastModified are the server's validators, to send back.
	ETag, LastModified string
}

// Index GETs <repoURL>/index.yaml, conditionally when etag or lastModified
// (from an earlier IndexResponse) are set. A body over maxBytes is refused
// with ErrTooLarge, by Content-Length before reading and by count while
// reading, never reading past maxBytes+1. The server may send it gzipped:
// then the limit applies to the compressed and to the decoded bytes.
func (f *Fetcher) Index(ctx context.Context, repoURL string, auth *Auth, etag, lastModified string, maxBytes int64) (IndexResponse, error) {
	repo, err := f.httpRepo(repoURL)
	if err != nil {
		return IndexResponse{}, err
	}
	if maxBytes <= 0 {
		return IndexResponse{}, fmt.Errorf("fetch index: maxBytes %d is not positive", maxBytes)
	}
	client, err := f.httpClient(repo, auth)
	if err != nil {
		return IndexResponse{}, err
	}
	const what = "index.yaml"
	host := hostOf(repo)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, repo.JoinPath("index.yaml").String(), nil)
	if err != nil {
		return IndexResponse{}, fmt.Errorf("%w: no request for %s can be made", ErrInvalidURL, host)
	}
	f.setUserAgent(req.Header)
	// Set explicitly, so net/http leaves the body encoded and the limit
	// sees the compressed bytes as well as the decoded ones.
	req.Header.Set("Accept-Encoding", "gzip")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	if lastModified != "" {
		req.Header.Set("If-Modified-Since", lastModified)
	}
	resp, err := client.Do(req)
	if err != nil {
		return IndexResponse{}, f.classify(ctx, err, host, what, auth.login())
	}
	defer resp.Body.Close()
	out := IndexResponse{ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}
	switch {
	case resp.StatusCode == http.StatusNotModified && (etag != "" || lastModified != ""):
		out.NotModified = true
		if out.ETag == "" {
			out.ETag = etag
		}
		if out.LastModified == "" {
			out.LastModified = lastModified
		}
		return out, nil
	case resp.StatusCode != http.StatusOK:
		return IndexResponse{}, statusError(host, what, resp.StatusCode, auth.login())
	}

	var body io.Reader = resp.Body
	switch enc := strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		if resp.ContentLength > maxBytes {
			return IndexResponse{}, fmt.Errorf("%w: %s from %s is over %d bytes", ErrTooLarge, what, host, maxBytes)
		}
		zr, err := gzip.NewReader(capped(resp.Body, what, host, maxBytes))
		if err != nil {
			return IndexResponse{}, f.bodyError(ctx, err, host, what, auth)
		}
		body, resp.ContentLength = zr, -1
	default:
		return IndexResponse{}, fmt.Errorf("%w: %s sent %s in an encoding that was not asked for", ErrBadResponse, host, what)
	}
	out.Body, err = f.readBody(ctx, body, resp.ContentLength, host, what, maxBytes, auth)
	if err != nil {
		return IndexResponse{}, err
	}
	return out, nil
}

// Archive downloads a chart archive. chartURL is as the index lists it:
// absolute, or relative to repoURL + "/". The login goes only to the
// repository's origin (scheme, host and port), also on redirects; archives
// elsewhere are fetched anonymously. An archive over maxBytes is refused
// with ErrTooLarge.
func (f *Fetcher) Archive(ctx context.Context, repoURL, chartURL string, auth *Auth, maxBytes int64) ([]byte, error) {
	repo, err := f.httpRepo(repoURL)
	if err != nil {
		return nil, err
	}
	if maxBytes <= 0 {
		return nil, fmt.Errorf("fetch archive: maxBytes %d is not positive", maxBytes)
	}
	target, err := f.archiveURL(repo, chartURL)
	if err != nil {
		return nil, err
	}
	client, err := f.httpClient(repo, auth)
	if err != nil {
		return nil, err
	}
	host, what := hostOf(target), "archive "+path.Base(target.Path)
	withLogin := auth.login() && origin(target) == origin(repo)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: no request for the %s on %s can be made", ErrInvalidURL, what, host)
	}
	f.setUserAgent(req.Header)
	// The archive's bytes as stored (their digest is in the index), even
	// from a server that labels a .tgz as gzip-encoded.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := client.Do(req)
	if err != nil {
		return nil, f.classify(ctx, err, host, what, withLogin)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(host, what, resp.StatusCode, withLogin)
	}
	return f.readBody(ctx, resp.Body, resp.ContentLength, host, what, maxBytes, auth)
}

// archiveURL resolves chartURL against the repository as Helm does and
// checks the result as any request is checked. Unlike a repository URL, an
// archive URL may carry a query (signed download URLs do).
func (f *Fetcher) archiveURL(repo *url.URL, chartURL string) (*url.URL, error) {
	host := hostOf(repo)
	if strings.TrimSpace(chartURL) == "" {
		return nil, fmt.Errorf("%w: the index of %s lists an empty archive URL", ErrInvalidURL, host)
	}
	ref, err := url.Parse(chartURL)
	if err != nil {
		// The URL is not repeated: it may hold a signature.
		return nil, fmt.Errorf("%w: the index of %s lists an archive URL that does not parse", ErrInvalidURL, host)
	}
	base := *repo
	base.Path += "/"
	if base.RawPath != "" {
		base.RawPath += "/"
	}
	target := base.ResolveReference(ref)
	target.Fragment, target.RawFragment = "", ""
	checked, err := f.policy.CheckURL(target.String(), f.httpSchemes()...)
	if err != nil {
		return nil, fmt.Errorf("the archive URL listed by %s is refused: %w", host, err)
	}
	if err := f.checkHost(checked.Hostname()); err != nil {
		return nil, fmt.Errorf("the archive URL listed by %s is refused: %w", host, err)
	}
	return target, nil
}

// httpRepo checks repoURL as a Helm HTTP(S) repository.
func (f *Fetcher) httpRepo(raw string) (*url.URL, error) {
	u, err := f.checkURL(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "oci" {
		return nil, fmt.Errorf("%w: %s is an OCI registry, not an HTTP chart repository", ErrInvalidURL, hostOf(u))
	}
	return u, nil
}

// httpClient is the policy's client for repo with auth: basic or bearer
// credentials bound to the repository's origin (so they are set on each
// request, redirects included, for that origin only), the client
// certificate presented only there, and every request checked.
func (f *Fetcher) httpClient(repo *url.URL, auth *Auth) (*http.Client, error) {
	if auth.basic() && auth.bearer() {
		return nil, fmt.Errorf("%w: the login for %s has both a username/password and a bearer token", ErrInvalidAuth, hostOf(repo))
	}
	rt, err := f.roundTripper(repo, auth)
	if err != nil {
		return nil, err
	}
	switch {
	case auth.basic():
		rt = outbound.BindCredentials(rt, repo, func(r *http.Request) { r.SetBasicAuth(auth.Username, auth.Password) })
	case auth.bearer():
		rt = outbound.BindCredentials(rt, repo, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+auth.BearerToken) })
	}
	return f.policy.Client(rt, f.httpSchemes()...), nil
}

// readBody reads at most maxBytes from r, refusing more with ErrTooLarge:
// by contentLength (-1 when unknown) before reading, then by count.
func (f *Fetcher) readBody(ctx context.Context, r io.Reader, contentLength int64, host, what string, maxBytes int64, auth *Auth) ([]byte, error) {
	if contentLength > maxBytes {
		return nil, fmt.Errorf("%w: %s from %s is over %d bytes", ErrTooLarge, what, host, maxBytes)
	}
	b, err := io.ReadAll(capped(r, what, host, maxBytes))
	if err != nil {
		return nil, f.bodyError(ctx, err, host, what, auth)
	}
	return b, nil
}

// bodyError classifies an error met while reading a body.
func (f *Fetcher) bodyError(ctx context.Context, err error, host, what string, auth *Auth) error {
	var corrupt flate.CorruptInputError
	if errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) || errors.As(err, &corrupt) {
		return fmt.Errorf("%w: %s sent %s as gzip that does not decode", ErrBadResponse, host, what)
	}
	return f.classify(ctx, err, host, what, auth.login())
}
