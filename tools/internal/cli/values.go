package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"helm.sh/helm/v3/pkg/strvals"
	"sigs.k8s.io/yaml"
)

// valuesFlags are helm's flags for values: -f files merged in order, then
// --set and --set-string, parsed as helm parses them.
type valuesFlags struct {
	files     []string
	set       []string
	setString []string
}

func (v *valuesFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVarP(&v.files, "values", "f", nil, "values YAML file ('-' for standard input); may be repeated, later files win")
	f.StringArrayVar(&v.set, "set", nil, "set a value, helm style: a.b=1,list[0]=x (may be repeated; after -f)")
	f.StringArrayVar(&v.setString, "set-string", nil, "set a value as a string, helm style (may be repeated; after --set)")
	_ = cmd.MarkFlagFilename("values", "yaml", "yml", "json")
}

// given reports whether any values flag was used.
func (v *valuesFlags) given() bool { return len(v.files)+len(v.set)+len(v.setString) > 0 }

// yaml merges the values into one YAML document; "" when none were given.
func (v *valuesFlags) yaml(stdin io.Reader) (string, error) {
	if !v.given() {
		return "", nil
	}
	vals, err := mergeValues(v.files, v.set, v.setString, stdin, os.ReadFile)
	if err != nil {
		return "", err
	}
	b, err := yaml.Marshal(vals)
	if err != nil {
		return "", fmt.Errorf("encode values: %w", err)
	}
	return string(b), nil
}

// mergeValues builds values as `helm install -f ... --set ...` does: each
// file merged over the ones before (maps key by key, anything else
// replaced), then each --set, then each --set-string.
func mergeValues(files, set, setString []string, stdin io.Reader, readFile func(string) ([]byte, error)) (map[string]any, error) {
	base := map[string]any{}
	for _, f := range files {
		var b []byte
		var err error
		if f == "-" {
			b, err = io.ReadAll(stdin)
		} else {
			b, err = readFile(f)
		}
		if err != nil {
			return nil, fmt.Errorf("read values %s: %w", f, err)
		}
		cur := map[string]any{}
		if err := yaml.Unmarshal(b, &cur); err != nil {
			return nil, fmt.Errorf("read values %s: %w", f, err)
		}
		base = mergeMaps(base, cur)
	}
	for _, s := range set {
		if err := strvals.ParseInto(s, base); err != nil {
			return nil, usagef("--set %s: %v", s, err)
		}
	}
	for _, s := range setString {
		if err := strvals.ParseIntoString(s, base); err != nil {
			return nil, usagef("--set-string %s: %v", s, err)
		}
	}
	return base, nil
}

// mergeMaps merges b over a, recursing into maps both have.
func mergeMaps(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = mergeMaps(am, bm)
				continue
			}
		}
		out[k] = v
	}
	return out
}
