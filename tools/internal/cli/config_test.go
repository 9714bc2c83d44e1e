package cli

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestConfigSavedWithMode0600(t *testing.T) {
	// Whatever the umask, and whatever the old file's mode.
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	tests := []struct {
		name    string
		oldMode os.FileMode // 0: no file before
	}{
		{name: "new file"},
		{name: "world-readable file", oldMode: 0o644},
		{name: "group-writable file", oldMode: 0o660},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "nested", "slipway", "config.yaml")
			if tc.oldMode != 0 {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte("contexts: []\n"), tc.oldMode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tc.oldMode); err != nil {
					t.Fatal(err)
				}
				if _, insecure, err := LoadConfig(path); err != nil || !insecure {
					t.Fatalf("LoadConfig of a %o file: insecure %v, %v; want insecure", tc.oldMode, insecure, err)
				}
			}
			cfg := &Config{CurrentContext: "a"}
			cfg.Upsert(Context{Name: "a", Server: "https://s", Token: "slp_secret", Org: "acme"})
			if err := cfg.Save(path); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("mode %o, want 0600", st.Mode().Perm())
			}
			if tc.oldMode == 0 {
				dst, err := os.Stat(filepath.Dir(path))
				if err != nil {
					t.Fatal(err)
				}
				if dst.Mode().Perm() != 0o700 {
					t.Errorf("folder mode %o, want 0700", dst.Mode().Perm())
				}
			}
			got, insecure, err := LoadConfig(path)
			if err != nil || insecure {
				t.Fatalf("LoadConfig: insecure %v, %v", insecure, err)
			}
			if c := got.Context("a"); c == nil || c.Token != "slp_secret" || c.Org != "acme" || got.CurrentContext != "a" {
				t.Errorf("read back %+v", got)
			}
			// No temporary files left beside it.
			ents, _ := os.ReadDir(filepath.Dir(path))
			if len(ents) != 1 {
				t.Errorf("folder holds %d entries, want only config.yaml", len(ents))
			}
		})
	}
}

func TestLoadConfigMissingAndBad(t *testing.T) {
	dir := t.TempDir()
	cfg, insecure, err := LoadConfig(filepath.Join(dir, "none.yaml"))
	if err != nil || insecure || len(cfg.Contexts) != 0 {
		t.Errorf("missing file: %+v %v %v; want an empty configuration", cfg, insecure, err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("contexts:\n- name: a\n  sever: typo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadConfig(bad); err == nil || !strings.Contains(err.Error(), "sever") {
		t.Errorf("unknown field: %v; want an error naming it", err)
	}
}

func TestConfigPath(t *testing.T) {
	tests := []struct {
		name     string
		explicit string
		env      map[string]string
		want     string
	}{
		{name: "flag", explicit: "/x/c.yaml", env: map[string]string{"SLIPWAY_CONFIG": "/y", "XDG_CONFIG_HOME": "/z"}, want: "/x/c.yaml"},
		{name: "SLIPWAY_CONFIG", env: map[string]string{"SLIPWAY_CONFIG": "/y/c.yaml", "XDG_CONFIG_HOME": "/z"}, want: "/y/c.yaml"},
		{name: "XDG_CONFIG_HOME", env: map[string]string{"XDG_CONFIG_HOME": "/z", "HOME": "/home/u"}, want: "/z/slipway/config.yaml"},
		{name: "relative XDG_CONFIG_HOME is ignored", env: map[string]string{"XDG_CONFIG_HOME": "rel", "HOME": "/home/u"}, want: "/home/u/.config/slipway/config.yaml"},
		{name: "HOME", env: map[string]string{"HOME": "/home/u"}, want: "/home/u/.config/slipway/config.yaml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ConfigPath(tc.explicit, func(k string) string { return tc.env[k] })
			if err != nil || got != tc.want {
				t.Errorf("ConfigPath = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestTargetPrecedence checks flags over environment over the context.
func TestTargetPrecedence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	cfg := &Config{CurrentContext: "one", Contexts: []Context{
		{Name: "one", Server: "https://one", Token: "t1", Org: "o1"},
		{Name: "two", Server: "https://two", Token: "t2", Org: "o2"},
	}}
	if err := cfg.Save(path); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts globalOptions
		env  map[string]string
		want target
	}{
		{name: "current context", want: target{context: "one", server: "https://one", token: "t1", org: "o1"}},
		{name: "--context", opts: globalOptions{context: "two"}, want: target{context: "two", server: "https://two", token: "t2", org: "o2"}},
		{name: "SLIPWAY_CONTEXT", env: map[string]string{"SLIPWAY_CONTEXT": "two"}, want: target{context: "two", server: "https://two", token: "t2", org: "o2"}},
		{name: "env over context", env: map[string]string{"SLIPWAY_ORG": "oe", "SLIPWAY_TOKEN": "te", "SLIPWAY_SERVER": "https://e"},
			want: target{context: "one", server: "https://e", token: "te", org: "oe"}},
		{name: "flags over env", opts: globalOptions{org: "of", token: "tf", server: "https://f"}, env: map[string]string{"SLIPWAY_ORG": "oe", "SLIPWAY_TOKEN": "te"},
			want: target{context: "one", server: "https://f", token: "tf", org: "of"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.configPath = path
			a := &app{opts: tc.opts, env: Env{Getenv: func(k string) string { return tc.env[k] }, Stderr: &strings.Builder{}}}
			got, err := a.target()
			if err != nil || got != tc.want {
				t.Errorf("target = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	a := &app{opts: globalOptions{configPath: path, context: "three"}, env: Env{Getenv: func(string) string { return "" }}}
	if _, err := a.target(); err == nil {
		t.Error("an unknown --context is accepted")
	}
}
