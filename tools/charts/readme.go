package charts

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
	"helm.sh/helm/v3/pkg/chart/loader"
)

// Value is one key of a chart's values.yaml with its documentation.
type Value struct {
	// Path is the key's dotted path, e.g. "vault.kubernetes.role".
	Path string
	// Default is the value in values.yaml as one line of YAML; empty for a
	// map that has keys of its own (they are Values themselves).
	Default string
	// Doc is the comment above the key (or after it, on its line), joined
	// into one paragraph.
	Doc string
	// Leaf reports a key whose value is not a map with keys.
	Leaf bool
}

// ParseValues reads a values.yaml and returns its keys in file order.
func ParseValues(data []byte) ([]Value, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse values: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("values: the document is not a map")
	}
	var out []Value
	// The first key's head comment may start with the file's own header,
	// separated from the key's comment by a blank line.
	walk(root, "", true, &out)
	return out, nil
}

func walk(m *yaml.Node, prefix string, top bool, out *[]Value) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		path := k.Value
		if prefix != "" {
			path = prefix + "." + k.Value
		}
		head := k.HeadComment
		if top && i == 0 {
			// Drop the file header: everything up to the last blank line.
			if j := strings.LastIndex(head, "\n\n"); j >= 0 {
				head = head[j+2:]
			}
		}
		doc := commentText(head)
		if doc == "" {
			doc = commentText(k.LineComment + v.LineComment)
		}
		// A map whose keys carry no comments (resources, a Secret's name)
		// is documented as one value.
		val := Value{Path: path, Doc: doc, Leaf: v.Kind != yaml.MappingNode || !commented(v)}
		if val.Leaf {
			val.Default = inline(v)
		}
		*out = append(*out, val)
		if !val.Leaf {
			walk(v, path, false, out)
		}
	}
}

// commented reports whether any key below map m has a comment.
func commented(m *yaml.Node) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.HeadComment != "" || k.LineComment != "" || v.LineComment != "" {
			return true
		}
		if v.Kind == yaml.MappingNode && commented(v) {
			return true
		}
	}
	return false
}

// commentText turns "# a\n# b" into "a b"; lines of a comment that are
// indented further (examples) stay on lines of their own.
func commentText(c string) string {
	var parts []string
	for _, line := range strings.Split(c, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "#") {
			continue
		}
		parts = append(parts, strings.TrimSpace(strings.TrimPrefix(line, "#")))
	}
	return strings.TrimSpace(strings.Join(parts, " "))
}

// inline renders a value as one line of flow YAML.
func inline(v *yaml.Node) string {
	c := *v
	c.HeadComment, c.LineComment, c.FootComment = "", "", ""
	setFlow(&c)
	b, err := yaml.Marshal(&c)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

func setFlow(n *yaml.Node) {
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		n.Style = yaml.FlowStyle
	}
	n.HeadComment, n.LineComment, n.FootComment = "", "", ""
	for i, c := range n.Content {
		cc := *c
		setFlow(&cc)
		n.Content[i] = &cc
	}
}

// Readme returns the README.md of chart name, generated from its
// Chart.yaml and values.yaml (for the library chart: the helpers its
// templates define).
func Readme(dir, name string) ([]byte, error) {
	ch, err := loader.LoadDir(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", name, err)
	}
	var b bytes.Buffer
	md := ch.Metadata
	fmt.Fprintf(&b, "# %s\n\n", md.Name)
	fmt.Fprintf(&b, "<!-- Generated from Chart.yaml and values.yaml by `make charts` (tools/charts); do not edit. -->\n\n")
	fmt.Fprintf(&b, "%s\n\n", md.Description)
	fmt.Fprintf(&b, "Version %s, appVersion %s, type %s.", md.Version, md.AppVersion, md.Type)
	if len(md.Dependencies) > 0 {
		var deps []string
		for _, d := range md.Dependencies {
			s := fmt.Sprintf("`%s` %s", d.Name, d.Version)
			if d.Condition != "" {
				s += fmt.Sprintf(" (if `%s`)", d.Condition)
			}
			deps = append(deps, s)
		}
		fmt.Fprintf(&b, " Dependencies: %s.", strings.Join(deps, ", "))
	}
	b.WriteString(" How the charts fit together: [../README.md](../README.md); installing Slipway: [docs/install.md](../../docs/install.md).\n\n")
	if name == Library {
		if err := helpers(&b, filepath.Join(dir, name, "templates")); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	data, err := os.ReadFile(filepath.Join(dir, name, "values.yaml"))
	if err != nil {
		return nil, err
	}
	values, err := ParseValues(data)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", name, err)
	}
	if examples, _ := filepath.Glob(filepath.Join(dir, name, "ci", "*-values.yaml")); len(examples) > 0 {
		b.WriteString("Example values, each rendered, linted and dry-run applied by the checks: ")
		for i, e := range examples {
			if i > 0 {
				b.WriteString(", ")
			}
			f := filepath.Base(e)
			fmt.Fprintf(&b, "[`%s`](ci/%s)", f, f)
		}
		b.WriteString(".\n\n")
	}
	b.WriteString("## Values\n\n")
	b.WriteString("| key | default | description |\n|---|---|---|\n")
	for _, v := range values {
		if !v.Leaf && v.Doc == "" {
			continue
		}
		def := ""
		if v.Leaf {
			def = "`" + strings.ReplaceAll(v.Default, "|", `\|`) + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Path, def, cell(v.Doc))
	}
	return b.Bytes(), nil
}

// cell makes text safe inside a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "<", "&lt;")
	return strings.ReplaceAll(s, "\n", " ")
}

var defineRE = regexp.MustCompile(`\{\{-?\s*define\s+"([^"]+)"`)

// helpers lists the named templates the library chart defines, per file.
func helpers(b *bytes.Buffer, templates string) error {
	files, err := filepath.Glob(filepath.Join(templates, "*.tpl"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	b.WriteString("A library chart: it renders nothing itself. Every service chart depends on it and includes these helpers; each is documented in the comment above its `define`.\n\n")
	b.WriteString("| file | helpers |\n|---|---|\n")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var names []string
		for _, m := range defineRE.FindAllStringSubmatch(string(data), -1) {
			names = append(names, "`"+m[1]+"`")
		}
		fmt.Fprintf(b, "| [`%s`](templates/%s) | %s |\n", filepath.Base(f), filepath.Base(f), strings.Join(names, ", "))
	}
	return nil
}
