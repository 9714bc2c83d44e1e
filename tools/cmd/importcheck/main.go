// Command importcheck fails when a Slipway module imports across a boundary
// it must not cross (see internal/importcheck). Run from the repository root
// with the modules to check: `go run ./tools/cmd/importcheck pkg gateway ...`.
package main

import (
	"fmt"
	"os"

	"github.com/slipwayhq/slipway/tools/internal/importcheck"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: importcheck MODULE_DIR...")
		os.Exit(2)
	}
	vs, err := importcheck.Check(".", os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "importcheck:", err)
		os.Exit(1)
	}
	for _, v := range vs {
		fmt.Fprintln(os.Stderr, v)
	}
	if len(vs) > 0 {
		fmt.Fprintf(os.Stderr, "importcheck: %d forbidden imports\n", len(vs))
		os.Exit(1)
	}
	fmt.Println("importcheck: module boundaries hold")
}
