// Package ociregistry runs an OCI registry for the real environment: the
// CNCF distribution registry, storing under the state folder, serving plain
// HTTP on loopback behind htpasswd basic auth, and optionally sending its
// push/pull/delete notifications to a URL.
package ociregistry

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
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
	"sigs.k8s.io/yaml"

	"github.com/slipwayhq/slipway/tools/internal/devenv"
)

// Published variables: AddrEnv holds host:port (plain HTTP), UsernameEnv
// and PasswordEnv the credentials every request needs.
const (
	AddrEnv     = "OCI_REGISTRY"
	UsernameEnv = "OCI_REGISTRY_USERNAME"
	PasswordEnv = "OCI_REGISTRY_PASSWORD"
)

// Version of github.com/distribution/distribution/v3 that is installed.
const Version = "v3.1.2"

// Registry is the OCI registry component of the environment.
type Registry struct {
	// Notify, when set, is the URL the registry POSTs its event envelopes
	// (application/vnd.docker.distribution.events.v1+json) to.
	Notify string
	// NotifyHeaders are sent with every notification (an Authorization
	// header carrying the receiver's token).
	NotifyHeaders map[string]string
}

var _ devenv.Component = Registry{}

// Name implements devenv.Component.
func (Registry) Name() string { return "registry" }

// Binary installs the registry (once) and returns its path.
func Binary(ctx context.Context) (string, error) {
	return devenv.GoInstall(ctx, "distribution-registry", "github.com/distribution/distribution/v3/cmd/registry", Version)
}

// Start writes a configuration and an htpasswd file with fresh credentials,
// starts the registry on a free loopback port and publishes OCI_REGISTRY,
// OCI_REGISTRY_USERNAME and OCI_REGISTRY_PASSWORD. Stored images are kept
// between runs of the same state folder.
func (r Registry) Start(ctx context.Context, s *devenv.Stack) error {
	bin, err := Binary(ctx)
	if err != nil {
		return err
	}
	dir, err := s.Dir("registry")
	if err != nil {
		return err
	}
	port, err := devenv.FreePort()
	if err != nil {
		return fmt.Errorf("registry port: %w", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	user, pw := "slipway-"+strings.ToLower(rand.Text()[:6]), rand.Text()

	// The registry checks the bcrypt hash on every request; a random
	// 26-character password makes the minimum cost as safe as any.
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		return fmt.Errorf("registry htpasswd: %w", err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := writeFile(htpasswd, user+":"+string(hash)+"\n"); err != nil {
		return err
	}
	config := filepath.Join(dir, "config.yml")
	b, err := yaml.Marshal(r.config(addr, filepath.Join(dir, "storage"), htpasswd))
	if err != nil {
		return fmt.Errorf("registry config: %w", err)
	}
	if err := writeFile(config, string(b)); err != nil {
		return err
	}

	start := time.Now()
	cmd := exec.Command(bin, "serve", config)
	cmd.Dir = dir
	cmd.Env = registryEnv(os.Environ())
	p, err := s.Start("registry", cmd)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := devenv.WaitFor(ctx, "registry", p, func(ctx context.Context) error {
		return ready(ctx, "http://"+addr, user, pw)
	}); err != nil {
		return fmt.Errorf("%w (log: %s)", err, filepath.Join(s.State, "logs", "registry.log"))
	}

	s.SetEnv(AddrEnv, addr)
	s.SetEnv(UsernameEnv, user)
	s.SetEnv(PasswordEnv, pw)
	notify := "off"
	if r.Notify != "" {
		notify = r.Notify
	}
	fmt.Fprintf(s.Out, "registry %s ready at http://%s in %s (notifications: %s)\n",
		Version, addr, time.Since(start).Round(time.Millisecond), notify)
	return nil
}

// config is the registry's configuration: see
// https://distribution.github.io/distribution/about/configuration/.
func (r Registry) config(addr, storage, htpasswd string) map[string]any {
	c := map[string]any{
		"version": "0.1",
		"log": map[string]any{
			"level":     "info",
			"formatter": "text",
		},
		"storage": map[string]any{
			"filesystem": map[string]any{"rootdirectory": storage},
			"delete":     map[string]any{"enabled": true},
			"cache":      map[string]any{"blobdescriptor": "inmemory"},
		},
		"http": map[string]any{
			"addr":   addr,
			"secret": rand.Text(),
		},
		"auth": map[string]any{
			"htpasswd": map[string]any{
				"realm": "slipway-devstack",
				"path":  htpasswd,
			},
		},
	}
	if r.Notify != "" {
		c["notifications"] = map[string]any{
			"events": map[string]any{"includereferences": true},
			"endpoints": []any{map[string]any{
				"name":      "slipway",
				"url":       r.Notify,
				"timeout":   "5s",
				"threshold": 3,
				"backoff":   "1s",
				"headers":   r.notifyHeaders(),
			}},
		}
	}
	return c
}

// notifyHeaders is NotifyHeaders as distribution's configuration takes
// them: a list of values per header.
func (r Registry) notifyHeaders() map[string][]string {
	h := map[string][]string{}
	for k, v := range r.NotifyHeaders {
		h[k] = []string{v}
	}
	return h
}

// ready reports whether the registry answers the API version check with
// these credentials, which proves the htpasswd file was loaded.
func ready(ctx context.Context, base, user, pw string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v2/", nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(user, pw)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /v2/: %s", resp.Status)
	}
	return nil
}

// registryEnv drops REGISTRY_* variables, which override the configuration
// file, and turns off the OpenTelemetry exporter that would otherwise try
// to reach a collector on localhost.
func registryEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "REGISTRY_") && !strings.HasPrefix(kv, "OTEL_") {
			out = append(out, kv)
		}
	}
	return append(out, "OTEL_TRACES_EXPORTER=none")
}

// writeFile writes a new file of mode 0600: the configuration holds the
// HTTP secret and the htpasswd file the password's hash.
func writeFile(path, content string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("registry: replace %s: %w", path, err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("registry: write %s: %w", path, err)
	}
	return nil
}
