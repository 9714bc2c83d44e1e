package cli

import (
	"bytes"
	"flag"
	"strings"
	"testing"
	"time"
)

func TestParsePrecedence(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{name: "default", want: "127.0.0.1:9090"},
		{name: "env", env: map[string]string{"SLIPWAY_LISTEN_GRPC": ":1"}, want: ":1"},
		{name: "flag beats env", args: []string{"--listen-grpc=:2"}, env: map[string]string{"SLIPWAY_LISTEN_GRPC": ":1"}, want: ":2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			addr := fs.String("listen-grpc", "127.0.0.1:9090", "gRPC address")
			if err := Parse(fs, tc.args, "SLIPWAY", "x"); err != nil {
				t.Fatal(err)
			}
			if *addr != tc.want {
				t.Errorf("listen-grpc = %q, want %q", *addr, tc.want)
			}
		})
	}
}

func TestParseBadEnvNamesVariable(t *testing.T) {
	t.Setenv("SLIPWAY_TIMEOUT", "soon")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Duration("timeout", time.Second, "")
	err := Parse(fs, nil, "SLIPWAY", "x")
	if err == nil || !strings.Contains(err.Error(), "SLIPWAY_TIMEOUT") {
		t.Fatalf("Parse error = %v, want one naming SLIPWAY_TIMEOUT", err)
	}
}

func TestUsageListsEnv(t *testing.T) {
	fs := flag.NewFlagSet("slipway-x", flag.ContinueOnError)
	var out bytes.Buffer
	fs.SetOutput(&out)
	fs.String("db", "sqlite:x.db", "database `DSN`")
	if err := Parse(fs, []string{"--help"}, "SLIPWAY", "does x"); err != flag.ErrHelp {
		t.Fatalf("Parse(--help) = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"does x", "--db DSN", "env SLIPWAY_DB", `default "sqlite:x.db"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
}

func TestParseRejectsArgs(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	if err := Parse(fs, []string{"stray"}, "SLIPWAY", "x"); err == nil {
		t.Fatal("Parse accepted a stray argument")
	}
}
