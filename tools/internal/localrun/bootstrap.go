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
// would. A cluster already registered under that name is left as it is
// (a second make run on the same state).
func (s *Stack) RegisterCluster(ctx context.Context, name, kubeconfigPath string) error {
	kc, err := os.ReadFile(kubeconfigPath)
	if err != nil {
		return fmt.Errorf("read kubeconfig of cluster %s: %w", name, err)
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
	if err := s.post(ctx, owner, "/clusters", body); err != nil {
		return fmt.Errorf("register cluster %s: %w", name, err)
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
	if err := s.post(ctx, owner, "/credentials", body); err != nil {
		return "", fmt.Errorf("seed registry: record its login: %w", err)
	}
	return ref, nil
}

// post sends body to a route of the bootstrap org; 409 (already there)
// counts as success.
func (s *Stack) post(ctx context.Context, token, route string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.GatewayURL()+"/api/v1/orgs/"+BootstrapOrg+route, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch resp.StatusCode {
	case http.StatusOK, http.StatusConflict:
		return nil
	}
	return fmt.Errorf("POST %s: %s: %s", route, resp.Status, bytes.TrimSpace(msg))
}
