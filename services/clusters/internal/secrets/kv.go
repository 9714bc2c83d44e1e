package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	vault "github.com/hashicorp/vault/api"
)

// Put writes data as a new version of path with check-and-set: cas is the
// version the caller last saw, 0 when the path must not exist yet. A
// mismatch fails with ErrConflict. It returns the version written.
func (v *Vault) Put(ctx context.Context, path string, data map[string]string, cas int64) (int64, error) {
	if err := checkPath(path); err != nil {
		return 0, &opError{op: "put", path: path, detail: err.Error()}
	}
	if cas < 0 {
		return 0, &opError{op: "put", path: path, detail: fmt.Sprintf("check-and-set version %d is negative", cas)}
	}
	body := map[string]any{
		"data":    stringsToAny(data),
		"options": map[string]any{"cas": cas},
	}
	s, err := v.do(ctx, "put", path, func(ctx context.Context) (*vault.Secret, error) {
		return v.client.Logical().WriteWithContext(ctx, v.cfg.Mount+"/data/"+path, body)
	})
	if err != nil {
		return 0, err
	}
	if s == nil {
		return 0, &opError{op: "put", path: path, detail: "no version in the response"}
	}
	version, err := number(s.Data["version"])
	if err != nil {
		return 0, &opError{op: "put", path: path, detail: "version in the response: " + err.Error()}
	}
	return version, nil
}

// Get returns the data and the version number of path's latest version;
// ErrNotFound when it has none, or the latest was deleted.
func (v *Vault) Get(ctx context.Context, path string) (map[string]string, int64, error) {
	if err := checkPath(path); err != nil {
		return nil, 0, &opError{op: "get", path: path, detail: err.Error()}
	}
	s, err := v.do(ctx, "get", path, func(ctx context.Context) (*vault.Secret, error) {
		return v.client.Logical().ReadWithContext(ctx, v.cfg.Mount+"/data/"+path)
	})
	if err != nil {
		return nil, 0, err
	}
	if s == nil || s.Data == nil {
		return nil, 0, &opError{op: "get", path: path, kind: ErrNotFound}
	}
	raw, _ := s.Data["data"].(map[string]any)
	if raw == nil {
		// A soft-deleted or destroyed latest version answers with its
		// metadata only.
		return nil, 0, &opError{op: "get", path: path, kind: ErrNotFound, detail: "latest version deleted"}
	}
	meta, _ := s.Data["metadata"].(map[string]any)
	version, err := number(meta["version"])
	if err != nil {
		return nil, 0, &opError{op: "get", path: path, detail: "version in the response: " + err.Error()}
	}
	data := make(map[string]string, len(raw))
	for k, val := range raw {
		str, ok := val.(string)
		if !ok {
			// The key is named, the value never.
			return nil, 0, &opError{op: "get", path: path, detail: fmt.Sprintf("field %q is a %T, not a string", k, val)}
		}
		data[k] = str
	}
	return data, version, nil
}

// Destroy removes path with every version and its metadata for good. A
// path that does not exist is destroyed already.
func (v *Vault) Destroy(ctx context.Context, path string) error {
	if err := checkPath(path); err != nil {
		return &opError{op: "destroy", path: path, detail: err.Error()}
	}
	_, err := v.do(ctx, "destroy", path, func(ctx context.Context) (*vault.Secret, error) {
		return v.client.Logical().DeleteWithContext(ctx, v.cfg.Mount+"/metadata/"+path)
	})
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// checkPath refuses paths that would leave the mount or name it twice.
func checkPath(path string) error {
	switch {
	case path == "":
		return errors.New("empty path")
	case strings.HasPrefix(path, "/") || strings.HasSuffix(path, "/"):
		return errors.New("path must be relative to the mount, without leading or trailing /")
	case strings.Contains(path, "//"):
		return errors.New("empty path segment")
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "." || seg == ".." {
			return errors.New("path must not contain . or .. segments")
		}
	}
	return nil
}

func stringsToAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func number(v any) (int64, error) {
	switch n := v.(type) {
	case json.Number:
		return n.Int64()
	case float64:
		return int64(n), nil
	case nil:
		return 0, errors.New("missing")
	}
	return 0, fmt.Errorf("a %T, not a number", v)
}
