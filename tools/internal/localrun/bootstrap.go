package localrun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/slipwayhq/slipway/tools/internal/devenv/chartrepo"
	"github.com/slipwayhq/slipway/tools/internal/devenv/ociregistry"
)

// GatewayURL is the REST base of the stack ("http://127.0.0.1:8080").
func (s *Stack) GatewayURL() string {
	for _, c := range s.Components {
		if c.Name == "gateway" {
			return "http://" + c.Addr
		}
	}
	return ""
}

// RegisterCluster registers the kubeconfig at path as cluster name of the
// bootstrap organization, through REST with the owner token, as a user
// would. On a later make run with the same state the environment's API
// server has a new address: a cluster of that name still pointing at the
// old one is replaced.
func (s *Stack) RegisterCluster(ctx context.Context, name, kubeconfigPath string) error {
	kc, err := os.ReadFile(kubeconfigPath)
	if err != nil {
		return fmt.Errorf("read kubeconfig of cluster %s: %w", name, err)
	}
	cfg, err := clientcmd.Load(kc)
	if err != nil {
		return fmt.Errorf("read kubeconfig of cluster %s: %w", name, err)
	}
	server := ""
	if c := cfg.Contexts[cfg.CurrentContext]; c != nil && cfg.Clusters[c.Cluster] != nil {
		server = cfg.Clusters[c.Cluster].Server
	}
	owner, err := s.BootstrapToken()
	if err != nil {
		return err
	}
	// protojson takes bytes fields as base64, which encoding/json writes.
	body, err := json.Marshal(map[string]any{"name": name, "kubeconfig": map[string]any{"kubeconfig": kc}})
	if err != nil {
		return err
	}
	status, answer, err := s.call(ctx, http.MethodPost, owner, "/clusters", body)
	if err != nil || status == http.StatusOK {
		return err
	}
	var got struct{ Cluster struct{ Server string } }
	if status != http.StatusConflict {
		return fmt.Errorf("register cluster %s: HTTP %d: %s", name, status, answer)
	}
	if status, answer, err = s.call(ctx, http.MethodGet, owner, "/clusters/"+name, nil); err != nil || status != http.StatusOK {
		return fmt.Errorf("register cluster %s: read the one registered: HTTP %d %s: %v", name, status, answer, err)
	}
	if err := json.Unmarshal(answer, &got); err != nil || got.Cluster.Server == server {
		return err
	}
	if status, answer, err = s.call(ctx, http.MethodDelete, owner, "/clusters/"+name+"?force=true", nil); err != nil || status != http.StatusOK {
		return fmt.Errorf("register cluster %s: replace the stale one: HTTP %d %s: %v", name, status, answer, err)
	}
	if status, answer, err = s.call(ctx, http.MethodPost, owner, "/clusters", body); err != nil || status != http.StatusOK {
		return fmt.Errorf("register cluster %s: HTTP %d %s: %v", name, status, answer, err)
	}
	return nil
}

// DemoImage is the repository and tag SeedRegistry pushes.
const DemoImage = "demo/hello:1.0.0"

// SeedRegistry pushes a small image to the environment's OCI registry as
// DemoImage and records the registry's login in the bootstrap org (as the
// credential "local-registry"), so that images of that registry resolve.
// It returns the image's reference. Pushing again is harmless; a
// credential already there is kept.
func (s *Stack) SeedRegistry(ctx context.Context, env map[string]string) (string, error) {
	host, user, pass := env[ociregistry.AddrEnv], env[ociregistry.UsernameEnv], env[ociregistry.PasswordEnv]
	if host == "" {
		return "", errors.New("seed registry: the environment has no OCI registry")
	}
	ref := host + "/" + DemoImage
	tag, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		return "", fmt.Errorf("seed registry: %w", err)
	}
	img, err := random.Image(512, 1)
	if err != nil {
		return "", fmt.Errorf("seed registry: %w", err)
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: user, Password: pass})
	if err := remote.Write(tag, img, remote.WithAuth(auth), remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("seed registry: push %s: %w", ref, err)
	}
	owner, err := s.BootstrapToken()
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(map[string]any{"name": "local-registry", "endpoint": host, "registry": map[string]string{"username": user, "password": pass}})
	if err != nil {
		return "", err
	}
	status, answer, err := s.call(ctx, http.MethodPost, owner, "/credentials", body)
	if err == nil && status == http.StatusConflict {
		// A later make run: the registry listens elsewhere now, with a new
		// login, and the dev Vault starts empty, so the old secret is gone
		// (a rotation's check-and-set would not match): replace it.
		if status, answer, err = s.call(ctx, http.MethodDelete, owner, "/credentials/local-registry", nil); err == nil && status == http.StatusOK {
			status, answer, err = s.call(ctx, http.MethodPost, owner, "/credentials", body)
		}
	}
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("HTTP %d: %s", status, answer)
	}
	if err != nil {
		return "", fmt.Errorf("seed registry: record its login: %w", err)
	}
	return ref, nil
}

// LocalRepository is the name SeedCatalog gives the environment's chart
// repository in the bootstrap org.
const LocalRepository = "local"

// SeedCatalog adds the environment's HTTP chart repository to the
// bootstrap org as LocalRepository, so that its charts can be searched
// and deployed at once. A repository already there is pointed at the
// repository's current URL (it listens elsewhere on every run).
func (s *Stack) SeedCatalog(ctx context.Context, env map[string]string) error {
	u := env[chartrepo.URLEnv]
	if u == "" {
		return errors.New("seed catalog: the environment has no chart repository")
	}
	owner, err := s.BootstrapToken()
	if err != nil {
		return err
	}
	body, err := json.Marshal(map[string]any{"name": LocalRepository, "url": u})
	if err != nil {
		return err
	}
	status, answer, err := s.call(ctx, http.MethodPost, owner, "/repositories", body)
	if err == nil && status == http.StatusConflict {
		patch, _ := json.Marshal(map[string]any{"url": u, "update_mask": "url"})
		status, answer, err = s.call(ctx, http.MethodPatch, owner, "/repositories/"+LocalRepository, patch)
	}
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("HTTP %d: %s", status, answer)
	}
	if err != nil {
		return fmt.Errorf("seed catalog: add repository %s: %w", u, err)
	}
	return nil
}

// call sends a REST request to a route of the bootstrap org and returns
// the status and (the start of) the answer.
func (s *Stack) call(ctx context.Context, method, token, route string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.GatewayURL()+"/api/v1/orgs/"+BootstrapOrg+route, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, bytes.TrimSpace(answer), err
}
