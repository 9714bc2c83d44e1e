// Package cli parses the flags of Slipway's binaries, with an environment
// variable as the fallback for every flag.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// EnvName is the environment variable that sets flag name: the prefix, then
// the name upper-cased with '-' and '.' turned into '_'
// ("listen-grpc" -> "SLIPWAY_LISTEN_GRPC").
func EnvName(prefix, name string) string {
	return prefix + "_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
}

// Parse parses args into fs. A flag absent from args takes the value of its
// environment variable (see EnvName) when that is set; the command line wins
// over the environment, which wins over the default. --help lists every
// flag with its variable and default.
func Parse(fs *flag.FlagSet, args []string, prefix, summary string) error {
	fs.Usage = func() { usage(fs, prefix, summary) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := EnvName(prefix, f.Name)
		v, ok := os.LookupEnv(env)
		if given[f.Name] || !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", env, err))
		}
	})
	return errors.Join(errs...)
}

func usage(fs *flag.FlagSet, prefix, summary string) {
	w := fs.Output()
	fmt.Fprintf(w, "%s\n\nUsage: %s [flags]\n\nFlags (each also read from the environment variable shown):\n", summary, fs.Name())
	fs.VisitAll(func(f *flag.Flag) {
		typ, help := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s %s\n", f.Name, typ)
		fmt.Fprintf(w, "        %s\n", strings.ReplaceAll(help, "\n", "\n        "))
		fmt.Fprintf(w, "        env %s", EnvName(prefix, f.Name))
		if f.DefValue != "" {
			fmt.Fprintf(w, ", default %q", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}
