package oidc

import (
	"errors"
	"io"
	"net/http"
)

var errResponseTooLarge = errors.New("oidc issuer response too large")

// newHTTPClient returns the client for discovery and JWKS fetches: bounded in
// time (go-oidc refetches keys in the background with no deadline) and in
// response size (go-oidc reads bodies whole).
func newHTTPClient() *http.Client {
	return &http.Client{
		Timeout:   fetchTimeout,
		Transport: limitedTransport{base: http.DefaultTransport.(*http.Transport).Clone(), max: maxResponseBytes},
	}
}

type limitedTransport struct {
	base http.RoundTripper
	max  int64
}

func (t limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{ReadCloser: resp.Body, left: t.max}
	return resp, nil
}

// limitedBody fails, rather than truncates, a body longer than left bytes.
type limitedBody struct {
	io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	// Read one byte past the limit so an over-long body is told apart from
	// one that ends exactly at it.
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	if int64(n) > b.left {
		n = int(b.left)
		b.left = 0
		return n, errResponseTooLarge
	}
	b.left -= int64(n)
	return n, err
}
