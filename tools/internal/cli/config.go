package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"sigs.k8s.io/yaml"
)

// Config is the configuration file: the contexts (a server, a token and
// an organization each) and which one is current. It holds API tokens, so
// it is written with mode 0600 in a 0700 folder.
type Config struct {
	CurrentContext string    `json:"current-context,omitempty"`
	Contexts       []Context `json:"contexts,omitempty"`
}

// Context is one server, the token used there and the organization
// commands act on.
type Context struct {
	Name   string `json:"name"`
	Server string `json:"server"`
	Token  string `json:"token,omitempty"`
	Org    string `json:"org,omitempty"`
}

// ConfigPath is where the configuration lives: explicit when given, else
// $SLIPWAY_CONFIG, else $XDG_CONFIG_HOME/slipway/config.yaml, else
// ~/.config/slipway/config.yaml.
func ConfigPath(explicit string, getenv func(string) string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if p := getenv("SLIPWAY_CONFIG"); p != "" {
		return p, nil
	}
	if x := getenv("XDG_CONFIG_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "slipway", "config.yaml"), nil
	}
	home := getenv("HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find the configuration folder: %w", err)
		}
		home = h
	}
	return filepath.Join(home, ".config", "slipway", "config.yaml"), nil
}

// LoadConfig reads the configuration at path; a missing file is an empty
// configuration. insecure is set when the file is readable by others.
func LoadConfig(path string) (cfg *Config, insecure bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Config{}, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read configuration: %w", err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		insecure = true
	}
	cfg = &Config{}
	if err := yaml.UnmarshalStrict(b, cfg); err != nil {
		return nil, insecure, fmt.Errorf("read configuration %s: %w", path, err)
	}
	return cfg, insecure, nil
}

// Save writes the configuration to path, atomically and with mode 0600
// whatever the umask or the old file's mode.
func (c *Config) Save(path string) error {
	b, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("save configuration: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save configuration: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".config-*.yaml")
	if err != nil {
		return fmt.Errorf("save configuration: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename there is nothing to remove
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("save configuration: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("save configuration: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save configuration: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save configuration: %w", err)
	}
	return nil
}

// Context returns the context named name, or nil.
func (c *Config) Context(name string) *Context {
	for i := range c.Contexts {
		if c.Contexts[i].Name == name {
			return &c.Contexts[i]
		}
	}
	return nil
}

// Upsert adds ctx, or replaces the context of its name.
func (c *Config) Upsert(ctx Context) {
	if old := c.Context(ctx.Name); old != nil {
		*old = ctx
		return
	}
	c.Contexts = append(c.Contexts, ctx)
}

// Remove deletes the context named name; it reports whether there was one.
func (c *Config) Remove(name string) bool {
	i := slices.IndexFunc(c.Contexts, func(x Context) bool { return x.Name == name })
	if i < 0 {
		return false
	}
	c.Contexts = slices.Delete(c.Contexts, i, i+1)
	if c.CurrentContext == name {
		c.CurrentContext = ""
	}
	return true
}

// config loads the configuration once, warning when others can read it.
func (a *app) config() (*Config, string, error) {
	path, err := ConfigPath(a.opts.configPath, a.env.Getenv)
	if err != nil {
		return nil, "", err
	}
	if a.cfg != nil {
		return a.cfg, path, nil
	}
	cfg, insecure, err := LoadConfig(path)
	if err != nil {
		return nil, "", err
	}
	if insecure {
		fmt.Fprintf(a.env.Stderr, "Warning: %s holds API tokens and is readable by others; it is rewritten with mode 0600 at the next change (or run chmod 600 on it).\n", path)
	}
	a.cfg = cfg
	return cfg, path, nil
}

// target is where a command sends its requests.
type target struct {
	context string // the context's name, when one is used
	server  string
	token   string
	org     string
}

// target resolves the server, token and organization: flags, then
// environment, then the chosen context (--context, $SLIPWAY_CONTEXT, the
// current one).
func (a *app) target() (target, error) {
	cfg, _, err := a.config()
	if err != nil {
		return target{}, err
	}
	var t target
	name := first(a.opts.context, a.env.Getenv("SLIPWAY_CONTEXT"), cfg.CurrentContext)
	if name != "" {
		c := cfg.Context(name)
		if c == nil && (a.opts.context != "" || a.env.Getenv("SLIPWAY_CONTEXT") != "") {
			return target{}, usagef("no context %q in the configuration (slipway context list)", name)
		}
		if c != nil {
			t = target{context: c.Name, server: c.Server, token: c.Token, org: c.Org}
		}
	}
	t.server = first(a.opts.server, a.env.Getenv("SLIPWAY_SERVER"), t.server)
	t.token = first(a.opts.token, a.env.Getenv("SLIPWAY_TOKEN"), t.token)
	t.org = first(a.opts.org, a.env.Getenv("SLIPWAY_ORG"), t.org)
	if t.server == "" {
		return target{}, errors.New("no Slipway server: run 'slipway login --server URL', or set SLIPWAY_SERVER")
	}
	return t, nil
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
