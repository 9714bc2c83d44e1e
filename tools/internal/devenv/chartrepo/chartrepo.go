// Package chartrepo runs an HTTP Helm chart repository for the real
// environment: the fixture charts, packaged with the Helm SDK into
// <state>/chartrepo/repo with an index.yaml, served by cmd/chartserve on
// loopback, optionally behind basic auth.
package chartrepo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/repo"

	"github.com/slipwayhq/slipway/tools/internal/devenv"
)

// Published variables: URLEnv holds the repository's URL; UsernameEnv and
// PasswordEnv its credentials, with BasicAuth only.
const (
	URLEnv      = "CHART_REPO_URL"
	UsernameEnv = "CHART_REPO_USERNAME"
	PasswordEnv = "CHART_REPO_PASSWORD"
)

// Repo is the chart repository component of the environment.
type Repo struct {
	// BasicAuth puts the repository behind generated credentials.
	BasicAuth bool
	// Charts is the folder whose subfolders holding a Chart.yaml are
	// served; empty means FixtureCharts().
	Charts string
}

var _ devenv.Component = Repo{}

// Name implements devenv.Component.
func (Repo) Name() string { return "chartrepo" }

// FixtureCharts is tools/devstack/testdata/charts of the source tree this
// package was built from.
func FixtureCharts() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "devstack", "testdata", "charts")
}

// Start packages the charts afresh, starts the server on a free loopback
// port and publishes CHART_REPO_URL (and, with BasicAuth,
// CHART_REPO_USERNAME and CHART_REPO_PASSWORD).
func (r Repo) Start(ctx context.Context, s *devenv.Stack) error {
	charts := r.Charts
	if charts == "" {
		charts = FixtureCharts()
	}
	bin, err := serverBinary(ctx)
	if err != nil {
		return err
	}
	dir, err := s.Dir("chartrepo")
	if err != nil {
		return err
	}
	port, err := devenv.FreePort()
	if err != nil {
		return fmt.Errorf("chartrepo port: %w", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	url := "http://" + addr

	start := time.Now()
	// The served folder holds nothing but the archives and the index: the
	// auth file sits beside it.
	served := filepath.Join(dir, "repo")
	index, err := Package(charts, served, url)
	if err != nil {
		return err
	}
	args := []string{"-addr", addr, "-dir", served}
	var user, pw string
	authFile := filepath.Join(dir, "auth")
	if err := os.Remove(authFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("chartrepo: replace auth file: %w", err)
	}
	if r.BasicAuth {
		user, pw = "slipway-"+strings.ToLower(rand.Text()[:6]), rand.Text()
		if err := os.WriteFile(authFile, []byte(user+":"+pw+"\n"), 0o600); err != nil {
			return fmt.Errorf("chartrepo: write auth file: %w", err)
		}
		args = append(args, "-auth-file", authFile)
	}

	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	p, err := s.Start("chartrepo", cmd)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := devenv.WaitFor(ctx, "chartrepo", p, func(ctx context.Context) error {
		return ready(ctx, url, user, pw)
	}); err != nil {
		return fmt.Errorf("%w (log: %s)", err, filepath.Join(s.State, "logs", "chartrepo.log"))
	}

	s.SetEnv(URLEnv, url)
	if r.BasicAuth {
		s.SetEnv(UsernameEnv, user)
		s.SetEnv(PasswordEnv, pw)
	}
	var names []string
	for name, versions := range index.Entries {
		for _, v := range versions {
			names = append(names, name+"-"+v.Version)
		}
	}
	slices.Sort(names)
	fmt.Fprintf(s.Out, "chartrepo ready at %s in %s (basic auth %t): %s\n",
		url, time.Since(start).Round(time.Millisecond), r.BasicAuth, strings.Join(names, ", "))
	return nil
}

// Package packages every subfolder of charts that holds a Chart.yaml into
// out, emptied first, and writes out/index.yaml with the archives' URLs
// under baseURL.
func Package(charts, out, baseURL string) (*repo.IndexFile, error) {
	dirs, err := filepath.Glob(filepath.Join(charts, "*", "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("chartrepo: no charts (*/Chart.yaml) in %s", charts)
	}
	if err := os.RemoveAll(out); err != nil {
		return nil, fmt.Errorf("chartrepo: clear %s: %w", out, err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("chartrepo: create %s: %w", out, err)
	}
	for _, f := range dirs {
		ch, err := loader.LoadDir(filepath.Dir(f))
		if err != nil {
			return nil, fmt.Errorf("chartrepo: load chart %s: %w", filepath.Dir(f), err)
		}
		if _, err := chartutil.Save(ch, out); err != nil {
			return nil, fmt.Errorf("chartrepo: package chart %s: %w", filepath.Dir(f), err)
		}
	}
	index, err := repo.IndexDirectory(out, baseURL)
	if err != nil {
		return nil, fmt.Errorf("chartrepo: index %s: %w", out, err)
	}
	index.SortEntries()
	if err := index.WriteFile(filepath.Join(out, "index.yaml"), 0o644); err != nil {
		return nil, fmt.Errorf("chartrepo: write index: %w", err)
	}
	return index, nil
}

// ready reports whether the server answers index.yaml.
func ready(ctx context.Context, url, user, pw string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/index.yaml", nil)
	if err != nil {
		return err
	}
	if user != "" {
		req.SetBasicAuth(user, pw)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /index.yaml: %s", resp.Status)
	}
	return nil
}
