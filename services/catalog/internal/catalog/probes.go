package catalog

import (
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/slipwayhq/slipway/pkg/validate"
)

// Probes names the HTTP endpoints of an application's pods, which the
// releases service asks through the clusters' API servers (the pod
// proxy) for a release's health and metrics.
type Probes struct {
	HealthPath  string `json:"health_path,omitempty"`
	HealthPort  string `json:"health_port,omitempty"`
	MetricsPort string `json:"metrics_port,omitempty"`
	MetricsPath string `json:"metrics_path,omitempty"`
}

// DefaultMetricsPath is the Prometheus endpoint's path when the
// application names none.
const DefaultMetricsPath = "/metrics"

// maxProbePath bounds a probe's path.
const maxProbePath = 1024

// checkProbes validates p and fills in the Prometheus path's default.
func checkProbes(p *Probes) error {
	switch {
	case p.HealthPath != "" && p.HealthPort == "":
		return validate.Field("probes.health_port", "required with probes.health_path")
	case p.HealthPort != "" && p.HealthPath == "":
		return validate.Field("probes.health_path", "required with probes.health_port")
	case p.MetricsPath != "" && p.MetricsPort == "":
		return validate.Field("probes.metrics_port", "required with probes.metrics_path")
	}
	if p.HealthPath != "" {
		if err := validate.First(probePath("probes.health_path", p.HealthPath), probePort("probes.health_port", p.HealthPort)); err != nil {
			return err
		}
	}
	if p.MetricsPort != "" {
		if p.MetricsPath == "" {
			p.MetricsPath = DefaultMetricsPath
		}
		if err := validate.First(probePath("probes.metrics_path", p.MetricsPath), probePort("probes.metrics_port", p.MetricsPort)); err != nil {
			return err
		}
	}
	return nil
}

// probePathChars and probeQueryChars are what a probe's path and query
// may hold: RFC 3986's path characters without percent-encoding (so that
// no encoded "/" or "." reaches the API server, which proxies the path),
// and its query characters.
var (
	probePathChars  = regexp.MustCompile(`^[A-Za-z0-9._~!$&'()*+,;=:@/-]*$`)
	probeQueryChars = regexp.MustCompile(`^[A-Za-z0-9._~!$&'()*+,;=:@/?%-]*$`)
)

// probePath accepts an absolute URL path with an optional query, nothing
// that could leave the pod's proxy path (no scheme, host, "." or ".."
// segment, or percent-encoding in the path).
func probePath(field, v string) error {
	if len(v) > maxProbePath {
		return validate.Field(field, "must be at most %d characters", maxProbePath)
	}
	if !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") {
		return validate.Field(field, "must be a path starting with \"/\", got %q", v)
	}
	path, query, _ := strings.Cut(v, "?")
	for _, seg := range strings.Split(path, "/") {
		if seg == ".." || seg == "." {
			return validate.Field(field, "must not hold \".\" or \"..\" segments, got %q", v)
		}
	}
	if !probePathChars.MatchString(path) || !probeQueryChars.MatchString(query) {
		return validate.Field(field, "must hold only letters, digits and -._~!$&'()*+,;=:@/ (and %% in the query), got %q", v)
	}
	return nil
}

// probePort accepts a port number (1 to 65535) or a container port's name.
func probePort(field, v string) error {
	if n, err := strconv.Atoi(v); err == nil {
		if validation.IsValidPortNum(n) != nil {
			return validate.Field(field, "must be a port from 1 to 65535, got %d", n)
		}
		return nil
	}
	if errs := validation.IsValidPortName(v); len(errs) > 0 {
		return validate.Field(field, "must be a port number or a container port's name (at most 15 lower-case letters, digits and '-'), got %q", v)
	}
	return nil
}
