package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// client calls the REST API of one server as one caller.
type client struct {
	server  string // without a trailing slash
	token   string
	org     string
	http    *http.Client // requests with the per-request time limit
	stream  *http.Client // event streams: no time limit
	version string
}

var (
	marshalOpts   = protojson.MarshalOptions{UseProtoNames: true}
	unmarshalOpts = protojson.UnmarshalOptions{DiscardUnknown: true}
)

// client returns a client for the resolved target.
func (a *app) client() (*client, error) {
	t, err := a.target()
	if err != nil {
		return nil, err
	}
	return a.newClient(t), nil
}

func (a *app) newClient(t target) *client {
	return &client{
		server:  strings.TrimRight(t.server, "/"),
		token:   t.token,
		org:     t.org,
		http:    &http.Client{Timeout: a.opts.timeout},
		stream:  &http.Client{},
		version: a.env.Version,
	}
}

// orgName returns the organization commands act on.
func (c *client) orgName() (string, error) {
	if c.org == "" {
		return "", errors.New("no organization: run 'slipway org use NAME', or pass --org (or set SLIPWAY_ORG)")
	}
	return c.org, nil
}

// request is one API call.
type request struct {
	op     string   // OpenAPI operation id (see routes)
	params []string // the route's path parameters, in order
	query  url.Values
	body   proto.Message // marshalled as the route's body
	raw    []byte        // or a JSON body as it is
	// idempotencyKey, when set, is sent as Idempotency-Key, and lets the
	// call be retried after a transport error.
	idempotencyKey string
}

// response is an API answer with a 2xx status.
type response struct {
	status int
	header http.Header
	body   []byte
}

// decode reads the answer into msg, ignoring fields this client does not
// know (a newer server's).
func (r *response) decode(msg proto.Message) error {
	if err := unmarshalOpts.Unmarshal(r.body, msg); err != nil {
		return fmt.Errorf("read the server's answer: %w", err)
	}
	return nil
}

// do sends req and returns its answer; a non-2xx answer is a *Problem.
func (c *client) do(ctx context.Context, req request) (*response, error) {
	method, path, err := routePath(req.op, req.params...)
	if err != nil {
		return nil, err
	}
	body := req.raw
	if req.body != nil {
		if body, err = marshalOpts.Marshal(req.body); err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
	}
	u := c.server + path
	if len(req.query) > 0 {
		u += "?" + req.query.Encode()
	}
	attempts := 1
	if req.idempotencyKey != "" {
		attempts = 3
	}
	var resp *http.Response
	for i := 0; ; i++ {
		hr, err := http.NewRequestWithContext(ctx, method, u, bytesReader(body))
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		c.headers(hr)
		if body != nil {
			hr.Header.Set("Content-Type", "application/json")
		}
		if req.idempotencyKey != "" {
			hr.Header.Set("Idempotency-Key", req.idempotencyKey)
		}
		resp, err = c.http.Do(hr)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if i+1 >= attempts {
			return nil, fmt.Errorf("%s %s: %w", method, c.server, err)
		}
		// The key makes the retry safe: the server answers the operation
		// the first attempt started, if it got that far.
		select {
		case <-time.After(time.Duration(i+1) * 500 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, problemFrom(resp.StatusCode, resp.Header, b)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

func (c *client) headers(r *http.Request) {
	if c.token != "" {
		r.Header.Set("Authorization", "Bearer "+c.token)
	}
	r.Header.Set("Accept", "application/json")
	r.Header.Set("User-Agent", "slipway-cli/"+c.version)
}

func bytesReader(b []byte) io.Reader {
	if b == nil {
		return nil
	}
	return bytes.NewReader(b)
}

// newIdempotencyKey returns a random key for one command's request.
func newIdempotencyKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "slipway-cli-" + hex.EncodeToString(b)
}

// Problem is an RFC 9457 problem document, the body of every API error.
type Problem struct {
	Type      string           `json:"type"`
	Title     string           `json:"title"`
	Status    int              `json:"status"`
	Detail    string           `json:"detail"`
	Code      string           `json:"code"`
	RequestID string           `json:"request_id"`
	Errors    []FieldViolation `json:"errors"`
	// RetryAfter is the Retry-After header, when the server sent one.
	RetryAfter string `json:"-"`
}

// FieldViolation names one bad field of a request.
type FieldViolation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(first(p.Detail, p.Title, http.StatusText(p.Status)))
	if p.Code != "" {
		fmt.Fprintf(&b, " (%s, HTTP %d)", p.Code, p.Status)
	} else {
		fmt.Fprintf(&b, " (HTTP %d)", p.Status)
	}
	return b.String()
}

// problemFrom reads an error answer: a problem document, or whatever a
// proxy in between answered.
func problemFrom(status int, h http.Header, body []byte) *Problem {
	p := &Problem{}
	ct, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	if ct == "application/problem+json" || ct == "application/json" {
		_ = json.Unmarshal(body, p)
	}
	if p.Status == 0 {
		p.Status = status
	}
	if p.Title == "" {
		p.Title = http.StatusText(status)
	}
	if p.Code == "" && p.Detail == "" {
		// Not Slipway's answer: say what came back, briefly.
		txt := strings.TrimSpace(string(body))
		if len(txt) > 200 {
			txt = txt[:200] + "..."
		}
		p.Detail = txt
	}
	if p.RequestID == "" {
		p.RequestID = h.Get("X-Request-Id")
	}
	p.RetryAfter = h.Get("Retry-After")
	return p
}

// printError prints err for people: a problem with its title, detail,
// code, every field violation and the request id.
func printError(w io.Writer, err error) {
	var p *Problem
	if !errors.As(err, &p) {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(w, "Interrupted.")
			return
		}
		fmt.Fprintf(w, "Error: %v\n", err)
		return
	}
	fmt.Fprint(w, formatProblem(p))
}

func formatProblem(p *Problem) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Error: %s", first(p.Title, http.StatusText(p.Status)))
	if p.Detail != "" {
		fmt.Fprintf(&b, ": %s", p.Detail)
	}
	b.WriteString("\n")
	for _, f := range p.Errors {
		fmt.Fprintf(&b, "  - %s: %s\n", first(f.Field, "(request)"), f.Description)
	}
	code := p.Code
	if code == "" {
		code = "-"
	}
	fmt.Fprintf(&b, "  code: %s (HTTP %d)\n", code, p.Status)
	if p.RetryAfter != "" {
		fmt.Fprintf(&b, "  retry after: %ss\n", p.RetryAfter)
	}
	if p.RequestID != "" {
		fmt.Fprintf(&b, "  request id: %s\n", p.RequestID)
	}
	return b.String()
}

// isNotFound reports whether err is the API's not_found.
func isNotFound(err error) bool {
	var p *Problem
	return errors.As(err, &p) && p.Status == http.StatusNotFound
}
