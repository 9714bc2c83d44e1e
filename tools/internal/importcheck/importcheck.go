// Package importcheck enforces Slipway's module boundaries: pkg imports no
// service, no service imports another service (it asks over gRPC), the
// gateway imports no service, and proto imports nothing of Slipway's but
// itself.
package importcheck

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Root is the module path prefix of every Slipway module.
const Root = "github.com/slipwayhq/slipway/"

// area returns the boundary an import path belongs to ("pkg", "proto",
// "gateway", "tools", "services/<name>"), or "" outside Slipway.
func area(importPath string) string {
	rest, ok := strings.CutPrefix(importPath, Root)
	if !ok {
		return ""
	}
	parts := strings.Split(rest, "/")
	if parts[0] == "services" && len(parts) > 1 {
		return "services/" + parts[1]
	}
	return parts[0]
}

// Allowed reports whether a package in from may import imp, and why not.
func Allowed(from, imp string) (bool, string) {
	src, dst := area(from), area(imp)
	if dst == "" || src == dst {
		return true, ""
	}
	switch src {
	case "proto":
		return false, "proto imports only generated code and third-party packages"
	case "pkg":
		if dst == "proto" {
			return true, ""
		}
		return false, "pkg is the shared kit and imports no service, gateway or tool"
	case "gateway":
		if dst == "pkg" || dst == "proto" {
			return true, ""
		}
		return false, "the gateway reaches services over gRPC, never by importing them"
	case "tools":
		if strings.Contains(imp, "/internal/") || strings.HasSuffix(imp, "/internal") {
			return false, "tools use services only through their binaries and APIs"
		}
		return true, ""
	}
	if strings.HasPrefix(src, "services/") {
		if dst == "pkg" || dst == "proto" {
			return true, ""
		}
		return false, "a service never imports another service or the gateway; it asks over gRPC"
	}
	return true, ""
}

// Violation is one forbidden import.
type Violation struct{ From, Import, Why string }

func (v Violation) String() string { return fmt.Sprintf("%s imports %s: %s", v.From, v.Import, v.Why) }

// Check lists every package of the modules under root (with its test
// imports) and returns the forbidden imports.
func Check(root string, modules []string) ([]Violation, error) {
	var out []Violation
	for _, m := range modules {
		cmd := exec.Command("go", "list", "-e", "-f",
			`{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}}`, "./...")
		cmd.Dir = filepath.Join(root, m)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("go list in %s: %w: %s", m, err, stderr.String())
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 0 {
				continue
			}
			for _, imp := range f[1:] {
				if ok, why := Allowed(f[0], imp); !ok {
					out = append(out, Violation{From: f[0], Import: imp, Why: why})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}
