package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/pkg/testenv"
	"github.com/slipwayhq/slipway/tools/internal/devenv/kube"
)

// tourBlock is one ```sh block of docs/tour.md.
type tourBlock struct {
	line int // of the opening fence, 1-based
	code string
}

// tourBlocks returns the shell blocks of the tour, in order.
func tourBlocks(doc []byte) ([]tourBlock, error) {
	var blocks []tourBlock
	var cur *tourBlock
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```sh":
			cur = &tourBlock{line: n}
		case cur == nil && strings.HasPrefix(strings.TrimSpace(line), "```"):
			return nil, fmt.Errorf("line %d: only ```sh blocks run; fence %q", n, line)
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.code += line + "\n"
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("line %d: block not closed", cur.line)
	}
	return blocks, sc.Err()
}

// tourScript joins the blocks into one bash script, each announcing its
// line on stderr first, so a failure names the block it stopped in.
func tourScript(blocks []tourBlock) string {
	var b strings.Builder
	b.WriteString("trap 'echo \">>> failed: $BASH_COMMAND\" >&2' ERR\n")
	for _, bl := range blocks {
		fmt.Fprintf(&b, "echo '>>> docs/tour.md:%d' >&2\n%s", bl.line, bl.code)
	}
	b.WriteString("echo '>>> end of the tour' >&2\n")
	return b.String()
}

func TestTourBlocks(t *testing.T) {
	blocks, err := tourBlocks([]byte("# t\n```sh\na=1\n```\ntext\n```sh\necho $a\n```\n"))
	if err != nil || len(blocks) != 2 || blocks[0] != (tourBlock{2, "a=1\n"}) || blocks[1] != (tourBlock{6, "echo $a\n"}) {
		t.Errorf("blocks = %+v, %v", blocks, err)
	}
	if _, err := tourBlocks([]byte("```json\n{}\n```\n")); err == nil {
		t.Error("a json block was accepted: every block of the tour must run")
	}
	if _, err := tourBlocks([]byte("```sh\nx\n")); err == nil {
		t.Error("an open block was accepted")
	}
}

// TestTour runs docs/tour.md as a user pastes it, against a fresh
// Slipway on the devstack set up as `make run` sets it up: the doc's
// commands still work, and every check in them holds.
func TestTour(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real stack")
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "tour.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := tourBlocks(doc)
	if err != nil {
		t.Fatalf("docs/tour.md: %v", err)
	}
	if len(blocks) < 8 {
		t.Fatalf("docs/tour.md has %d shell blocks", len(blocks))
	}
	for _, tool := range []string{"bash", "curl", "jq", "base64"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the tour needs %s: %v", tool, err)
		}
	}
	type built struct {
		bin string
		err error
	}
	bins := make(chan built, 1)
	binDir := t.TempDir()
	go func() {
		bin, err := buildCLI(binDir)
		bins <- built{bin, err}
	}()
	env := testenv.Get(t, "vault", "kube", "registry", "chartrepo", "kubelogs", "kubemetrics")
	// Instances may live 3 s, and the culler looks every second: the
	// tour's culling takes seconds, not make run's 5 minutes.
	s := startStack(t, env, "SLIPWAY_RELEASES_INSTANCE_MIN_TTL=3s", "SLIPWAY_RELEASES_INSTANCE_CULL_INTERVAL=1s")
	b := <-bins
	if b.err != nil {
		t.Fatal(b.err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// What make run does after starting the processes (tools/devstack run).
	if err := s.s.RegisterCluster(ctx, "local", env[kube.EnvKubeconfig("c1")]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.s.SeedRegistry(ctx, env); err != nil {
		t.Fatal(err)
	}
	if err := s.s.SeedCatalog(ctx, env); err != nil {
		t.Fatal(err)
	}
	// The state folder as the doc reads it: the token and the devstack's
	// environment.
	state := t.TempDir()
	tok, err := s.s.BootstrapToken()
	if err != nil {
		t.Fatal(err)
	}
	var denv strings.Builder
	for k, v := range env {
		fmt.Fprintf(&denv, "%s=%s\n", k, v)
	}
	for name, body := range map[string]string{"bootstrap-token": tok + "\n", "devstack.env": denv.String()} {
		if err := os.WriteFile(filepath.Join(state, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	runCtx, stop := context.WithTimeout(context.Background(), 10*time.Minute)
	defer stop()
	cmd := exec.CommandContext(runCtx, "bash", "-c", tourScript(blocks))
	cmd.Dir = t.TempDir()
	// The user's shell: slipway on the PATH, a home of its own (the CLI's
	// configuration), none of the test's SLIPWAY_* variables.
	home := t.TempDir()
	cmd.Env = []string{"HOME=" + home, "PATH=" + binDir + string(os.PathListSeparator) + os.Getenv("PATH"),
		"STATE=" + state, "INSTANCE_TTL=20s", "SERVER=" + s.s.GatewayURL(), "DEVSTACK_ENV=" + filepath.Join(state, "devstack.env")}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	t.Logf("the tour took %s", time.Since(start).Round(100*time.Millisecond))
	if err != nil || !strings.Contains(out.String(), ">>> end of the tour") {
		last := strings.LastIndex(out.String(), ">>> docs/tour.md:")
		t.Fatalf("the tour stopped (%v) in the block at %s", err, strings.TrimSpace(out.String()[max(last, 0):]))
	}
}
