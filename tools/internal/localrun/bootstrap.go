package localrun

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
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
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.GatewayURL()+"/api/v1/orgs/"+BootstrapOrg+"/clusters", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+owner)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("register cluster %s: %w", name, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch resp.StatusCode {
	case http.StatusOK, http.StatusConflict:
		return nil
	}
	return fmt.Errorf("register cluster %s: %s: %s", name, resp.Status, bytes.TrimSpace(msg))
}
