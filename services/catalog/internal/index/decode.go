package index

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/Masterminds/semver/v3"
	"go.yaml.in/yaml/v3"
)

// Bounds on one entry, so a single version cannot make the index hold (or
// show) more than a catalog needs. An entry past one is skipped, not cut.
const (
	maxDescription = 4 << 10
	maxIcon        = 64 << 10 // data: URIs are common
	maxString      = 2 << 10
	maxKeywords    = 64
	maxURLs        = 16
	maxSources     = 64
	maxMaintainers = 64
	maxDeps        = 128
)

// decoder turns parsed entries into Versions. One is used by one goroutine.
type decoder struct {
	// off is added to node lines: a chart part parsed alone counts lines
	// from its own start.
	off int
	// intern shares the strings most versions of a chart repeat
	// (description, icon, maintainers, ...), so the index holds each once.
	intern map[string]string
	// clone copies every string kept, for trees whose values are substrings
	// of their whole part (the JSON route's): the index then holds only what
	// it uses, not every part's text. yaml.v3's values are copies already.
	clone bool
}

func newDecoder() *decoder { return &decoder{intern: make(map[string]string)} }

func (d *decoder) str(s string) string {
	if s == "" {
		return ""
	}
	if t, ok := d.intern[s]; ok {
		return t
	}
	s = d.keep(s)
	d.intern[s] = s
	return s
}

func (d *decoder) keep(s string) string {
	if d.clone {
		return strings.Clone(s)
	}
	return s
}

// chart decodes one pair of the entries mapping.
func (d *decoder) chart(key, val *yaml.Node) chartResult {
	// Strings repeat within a chart, rarely across charts; a per-chart table
	// stays small.
	clear(d.intern)
	name, err := helmString(key)
	if err != nil {
		k := d.keep(key.Value)
		return chartResult{name: k, skips: []Skip{{Chart: k, Reason: "chart key: " + err.Error()}}, skipped: 1}
	}
	name = d.keep(name)
	r := chartResult{name: name}
	val = deref(val)
	switch {
	case isNull(val):
		return r
	case val.Kind != yaml.SequenceNode:
		r.addSkip(Skip{Chart: name, Reason: fmt.Sprintf("line %d: chart entry is a %s, not a list of versions", d.line(val), kindName(val))})
		return r
	}
	r.entries = len(val.Content)
	r.versions = make([]Version, 0, len(val.Content))
	r.semvers = make([]*semver.Version, 0, len(val.Content))
	for _, item := range val.Content {
		v, sv, reason := d.version(name, item)
		if reason != "" {
			r.addSkip(Skip{Chart: name, Version: v.Version, Reason: reason})
			continue
		}
		v.Chart = name // equal to it, and then held once
		if n := len(r.versions); n > 0 {
			shareLists(&v, &r.versions[n-1])
		}
		r.versions = append(r.versions, v)
		r.semvers = append(r.semvers, sv)
	}
	return r
}

// shareLists gives v the lists of prev, the chart's version before it, that
// are equal to its own: a chart's versions mostly repeat their keywords,
// sources, maintainers and often dependencies, and the index then holds one
// copy of each. Empty lists are left as they are.
func shareLists(v, prev *Version) {
	if len(v.Keywords) > 0 && slices.Equal(v.Keywords, prev.Keywords) {
		v.Keywords = prev.Keywords
	}
	if len(v.Sources) > 0 && slices.Equal(v.Sources, prev.Sources) {
		v.Sources = prev.Sources
	}
	if len(v.Maintainers) > 0 && slices.Equal(v.Maintainers, prev.Maintainers) {
		v.Maintainers = prev.Maintainers
	}
	if len(v.Dependencies) > 0 && slices.Equal(v.Dependencies, prev.Dependencies) {
		v.Dependencies = prev.Dependencies
	}
}

func (r *chartResult) addSkip(s Skip) {
	if len(r.skips) < MaxSkipped {
		r.skips = append(r.skips, s)
	}
	r.skipped++
}

// Fields of a version, to keep explicit keys ahead of merged ("<<") ones.
const (
	fName uint32 = 1 << iota
	fVersion
	fAppVersion
	fDescription
	fAPIVersion
	fType
	fKubeVersion
	fHome
	fIcon
	fKeywords
	fSources
	fURLs
	fMaintainers
	fDependencies
	fDeprecated
	fDigest
	fCreated
)

var versionFields = map[string]uint32{
	"name": fName, "version": fVersion, "appversion": fAppVersion, "description": fDescription,
	"apiversion": fAPIVersion, "type": fType, "kubeversion": fKubeVersion, "home": fHome,
	"icon": fIcon, "keywords": fKeywords, "sources": fSources, "urls": fURLs,
	"maintainers": fMaintainers, "dependencies": fDependencies, "deprecated": fDeprecated,
	"digest": fDigest, "created": fCreated,
}

// field finds the field a key names. Helm decodes through encoding/json,
// which matches field names case-insensitively, so this does too.
func field(k string) uint32 {
	switch k {
	case "name":
		return fName
	case "version":
		return fVersion
	case "appVersion":
		return fAppVersion
	case "description":
		return fDescription
	case "apiVersion":
		return fAPIVersion
	case "type":
		return fType
	case "kubeVersion":
		return fKubeVersion
	case "home":
		return fHome
	case "icon":
		return fIcon
	case "keywords":
		return fKeywords
	case "sources":
		return fSources
	case "urls":
		return fURLs
	case "maintainers":
		return fMaintainers
	case "dependencies":
		return fDependencies
	case "deprecated":
		return fDeprecated
	case "digest":
		return fDigest
	case "created":
		return fCreated
	case "annotations", "removed", "checksum", "engine", "tillerVersion", "url", "tags", "condition":
		return 0
	}
	return versionFields[strings.ToLower(k)]
}

// version decodes and validates one chart version. A non-empty reason means
// the entry is skipped; v then holds what was read, for the report.
func (d *decoder) version(chart string, n *yaml.Node) (v Version, sv *semver.Version, reason string) {
	n = deref(n)
	switch {
	case isNull(n):
		return v, nil, "empty entry"
	case n.Kind != yaml.MappingNode:
		return v, nil, fmt.Sprintf("line %d: version entry is a %s, not a mapping", d.line(n), kindName(n))
	}
	var set uint32
	if err := d.fields(&v, n, &set, 0); err != nil {
		return v, nil, fmt.Sprintf("line %d: %v", d.line(n), err)
	}
	if reason := d.validate(chart, &v); reason != "" {
		return v, nil, reason
	}
	sv, err := semver.NewVersion(v.Version)
	if err != nil {
		return v, nil, fmt.Sprintf("version %q is invalid", v.Version)
	}
	return v, sv, ""
}

// fields sets v's fields from mapping n, skipping those already in set. Merge
// keys are applied after n's own keys, first source first, as YAML defines;
// depth bounds merges of merges (safeyaml has bounded the tree already).
func (d *decoder) fields(v *Version, n *yaml.Node, set *uint32, depth int) error {
	var merges []*yaml.Node
	var own uint32
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			continue
		}
		if k.Value == "<<" && k.ShortTag() == "!!merge" {
			merges = append(merges, val)
			continue
		}
		// A key repeated in one mapping keeps its last value, as
		// encoding/json keeps it; one set by a mapping merging this one wins.
		f := field(k.Value)
		if f == 0 || *set&f != 0 {
			continue
		}
		own |= f
		if err := d.setField(v, f, k.Value, val); err != nil {
			return err
		}
	}
	*set |= own
	if depth > 64 {
		return errors.New("merge keys nest too deep")
	}
	for _, m := range merges {
		m = deref(m)
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, s := range srcs {
			s = deref(s)
			if s.Kind != yaml.MappingNode {
				return errors.New("map merge requires a map or a sequence of maps")
			}
			if err := d.fields(v, s, set, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *decoder) setField(v *Version, f uint32, key string, n *yaml.Node) error {
	var err error
	str := func(dst *string, intern bool) {
		var s string
		if s, err = helmString(n); err == nil {
			if intern {
				s = d.str(s)
			} else {
				s = d.keep(s)
			}
			*dst = s
		}
	}
	switch f {
	case fName:
		str(&v.Chart, false)
	case fVersion:
		str(&v.Version, false)
	case fAppVersion:
		str(&v.AppVersion, true)
	case fDescription:
		str(&v.Description, true)
	case fAPIVersion:
		str(&v.APIVersion, true)
	case fType:
		str(&v.Type, true)
	case fKubeVersion:
		str(&v.KubeVersion, true)
	case fHome:
		str(&v.Home, true)
	case fIcon:
		str(&v.Icon, true)
	case fDigest:
		str(&v.Digest, false)
	case fKeywords:
		v.Keywords, err = d.strings(n, maxKeywords, true)
	case fSources:
		v.Sources, err = d.strings(n, maxSources, true)
	case fURLs:
		v.URLs, err = d.strings(n, maxURLs, false)
	case fMaintainers:
		v.Maintainers, err = d.maintainers(n)
	case fDependencies:
		v.Dependencies, err = d.dependencies(n)
	case fDeprecated:
		v.Deprecated, err = helmBool(n)
	case fCreated:
		v.Created, err = helmTime(n)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

func (d *decoder) strings(n *yaml.Node, limit int, intern bool) ([]string, error) {
	n = deref(n)
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("a %s, not a list", kindName(n))
	}
	if len(n.Content) > limit {
		return nil, fmt.Errorf("%d items, more than %d", len(n.Content), limit)
	}
	out := make([]string, len(n.Content))
	for i, c := range n.Content {
		s, err := helmString(c)
		if err != nil {
			return nil, err
		}
		if intern {
			s = d.str(s)
		} else {
			s = d.keep(s)
		}
		out[i] = s
	}
	return out, nil
}

// mappingItems calls each for the items of list n, which must be mappings
// (null items are refused as Helm refuses them).
func mappingItems(n *yaml.Node, limit int, what string, each func(i int, m *yaml.Node) error) (int, error) {
	n = deref(n)
	if isNull(n) {
		return 0, nil
	}
	if n.Kind != yaml.SequenceNode {
		return 0, fmt.Errorf("a %s, not a list", kindName(n))
	}
	if len(n.Content) > limit {
		return 0, fmt.Errorf("%d items, more than %d", len(n.Content), limit)
	}
	for i, c := range n.Content {
		c = deref(c)
		if isNull(c) {
			return 0, fmt.Errorf("%s must not contain empty or null nodes", what)
		}
		if c.Kind != yaml.MappingNode {
			return 0, fmt.Errorf("%s item is a %s, not a mapping", what, kindName(c))
		}
		if err := each(i, c); err != nil {
			return 0, err
		}
	}
	return len(n.Content), nil
}

// eachPair calls f for the pairs of mapping m, its merged pairs after its
// own, skipping merged keys m sets itself; f sees a key repeated in one
// mapping each time, so the last value stays.
func eachPair(m *yaml.Node, f func(key string, val *yaml.Node) error) error {
	seen := map[string]bool{}
	var walk func(m *yaml.Node, depth int) error
	walk = func(m *yaml.Node, depth int) error {
		var merges []*yaml.Node
		var own []string
		for i := 0; i+1 < len(m.Content); i += 2 {
			k := deref(m.Content[i])
			if k.Kind != yaml.ScalarNode {
				continue
			}
			if k.Value == "<<" && k.ShortTag() == "!!merge" {
				merges = append(merges, m.Content[i+1])
				continue
			}
			key := strings.ToLower(k.Value)
			if seen[key] {
				continue // set by a mapping merging this one
			}
			own = append(own, key)
			if err := f(key, m.Content[i+1]); err != nil {
				return err
			}
		}
		for _, k := range own {
			seen[k] = true
		}
		if depth > 64 {
			return errors.New("merge keys nest too deep")
		}
		for _, mg := range merges {
			mg = deref(mg)
			srcs := []*yaml.Node{mg}
			if mg.Kind == yaml.SequenceNode {
				srcs = mg.Content
			}
			for _, s := range srcs {
				s = deref(s)
				if s.Kind != yaml.MappingNode {
					return errors.New("map merge requires a map or a sequence of maps")
				}
				if err := walk(s, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(m, 0)
}

func (d *decoder) maintainers(n *yaml.Node) ([]Maintainer, error) {
	var out []Maintainer
	_, err := mappingItems(n, maxMaintainers, "maintainers", func(i int, m *yaml.Node) error {
		if out == nil {
			out = make([]Maintainer, len(deref(n).Content))
		}
		mt := &out[i]
		return eachPair(m, func(key string, val *yaml.Node) error {
			var dst *string
			switch key {
			case "name":
				dst = &mt.Name
			case "email":
				dst = &mt.Email
			case "url":
				dst = &mt.URL
			default:
				return nil
			}
			s, err := helmString(val)
			if err != nil {
				return fmt.Errorf("maintainer %s: %w", key, err)
			}
			*dst = d.str(sanitize(s))
			return nil
		})
	})
	return out, err
}

func (d *decoder) dependencies(n *yaml.Node) ([]Dependency, error) {
	var out []Dependency
	_, err := mappingItems(n, maxDeps, "dependencies", func(i int, m *yaml.Node) error {
		if out == nil {
			out = make([]Dependency, len(deref(n).Content))
		}
		dep := &out[i]
		return eachPair(m, func(key string, val *yaml.Node) error {
			var dst *string
			switch key {
			case "name":
				dst = &dep.Name
			case "version":
				dst = &dep.Version
			case "repository":
				dst = &dep.Repository
			case "condition":
				dst = &dep.Condition
			case "alias":
				dst = &dep.Alias
			default:
				return nil
			}
			s, err := helmString(val)
			if err != nil {
				return fmt.Errorf("dependency %s: %w", key, err)
			}
			if key != "alias" {
				// Helm sanitises every dependency field but the alias, which
				// it validates instead.
				s = sanitize(s)
			}
			*dst = d.str(s)
			return nil
		})
	})
	return out, err
}

// validate applies chart.Metadata.Validate's rules (as LoadIndexFile applies
// them, ignoring duplicate dependency names), sanitises what it sanitises,
// and this package's bounds.
func (d *decoder) validate(chart string, v *Version) string {
	v.Chart = sanitize(v.Chart)
	v.Description = d.str(sanitize(v.Description))
	v.Home = d.str(sanitize(v.Home))
	v.Icon = d.str(sanitize(v.Icon))
	v.AppVersion = d.str(sanitize(v.AppVersion))
	v.KubeVersion = d.str(sanitize(v.KubeVersion))
	for i := range v.Sources {
		v.Sources[i] = d.str(sanitize(v.Sources[i]))
	}
	for i := range v.Keywords {
		v.Keywords[i] = d.str(sanitize(v.Keywords[i]))
	}
	if v.APIVersion == "" {
		v.APIVersion = "v1"
	}
	switch {
	case v.Chart == "":
		return "chart.metadata.name is required"
	case v.Chart == "." || v.Chart == "..":
		return fmt.Sprintf("chart.metadata.name %q is not allowed", v.Chart)
	case v.Chart != filepath.Base(v.Chart):
		return fmt.Sprintf("chart.metadata.name %q is invalid", v.Chart)
	case v.Chart != chart:
		return fmt.Sprintf("name %q does not match its entry %q", v.Chart, chart)
	case v.Version == "":
		return "chart.metadata.version is required"
	case v.Type != "" && v.Type != "application" && v.Type != "library":
		return "chart.metadata.type must be application or library"
	case len(v.Description) > maxDescription:
		return fmt.Sprintf("description is %d bytes, more than %d", len(v.Description), maxDescription)
	case len(v.Icon) > maxIcon:
		return fmt.Sprintf("icon is %d bytes, more than %d", len(v.Icon), maxIcon)
	}
	for _, s := range [...]struct {
		name, val string
	}{
		{"name", v.Chart}, {"version", v.Version}, {"appVersion", v.AppVersion}, {"apiVersion", v.APIVersion},
		{"kubeVersion", v.KubeVersion}, {"home", v.Home}, {"digest", v.Digest}, {"type", v.Type},
	} {
		if len(s.val) > maxString {
			return fmt.Sprintf("%s is %d bytes, more than %d", s.name, len(s.val), maxString)
		}
	}
	for _, list := range [...][]string{v.Keywords, v.Sources, v.URLs} {
		for _, s := range list {
			if len(s) > maxString {
				return fmt.Sprintf("a list item is %d bytes, more than %d", len(s), maxString)
			}
		}
	}
	for _, m := range v.Maintainers {
		if len(m.Name) > maxString || len(m.Email) > maxString || len(m.URL) > maxString {
			return fmt.Sprintf("a maintainer field is more than %d bytes", maxString)
		}
	}
	for _, dep := range v.Dependencies {
		if dep.Alias != "" && !validAlias(dep.Alias) {
			return fmt.Sprintf("dependency %q has disallowed characters in the alias", dep.Name)
		}
		if len(dep.Name) > maxString || len(dep.Version) > maxString || len(dep.Repository) > maxString || len(dep.Condition) > maxString {
			return fmt.Sprintf("a dependency field is more than %d bytes", maxString)
		}
	}
	v.Digest = normalizeDigest(v.Digest)
	return ""
}

// validAlias is chart.aliasNameFormat, ^[a-zA-Z0-9_-]+$.
func validAlias(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return s != ""
}

// normalizeDigest turns the index's hex SHA-256 of the archive into
// "sha256:<hex>"; anything else is not a digest a download can be checked
// against.
func normalizeDigest(s string) string {
	hex := strings.TrimPrefix(s, "sha256:")
	if len(hex) != 64 {
		return ""
	}
	lower := true
	for i := 0; i < len(hex); i++ {
		switch c := hex[i]; {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			lower = false
		default:
			return ""
		}
	}
	if !lower {
		hex = strings.ToLower(hex)
	}
	return "sha256:" + hex
}

// sanitize is chart's sanitizeString: whitespace becomes a space and other
// unprintable runes are dropped. Most strings are printable ASCII already
// and are returned without a copy.
func sanitize(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return strings.Map(func(r rune) rune {
				if unicode.IsSpace(r) {
					return ' '
				}
				if unicode.IsPrint(r) {
					return r
				}
				return -1
			}, s)
		}
	}
	return s
}

func (d *decoder) line(n *yaml.Node) int { return n.Line + d.off }

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		return deref(n.Content[0])
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	case yaml.ScalarNode:
		return "scalar"
	case yaml.DocumentNode:
		return "document"
	}
	return "node"
}

const quotedStyles = yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle | yaml.LiteralStyle | yaml.FoldedStyle

// helmString reads a scalar for a string field as written. Helm refuses the
// whole index when a chart field is a YAML 1.1 number or boolean (its
// YAML-to-JSON step does not reach fields of the embedded chart.Metadata), so
// no index Helm reads tells this apart from a coercion; as written keeps what
// the author meant (appVersion: 1.10 stays "1.10"). Null is "".
func helmString(n *yaml.Node) (string, error) {
	n = deref(n)
	if n == nil || n.Kind == 0 {
		return "", nil
	}
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("a %s, not a string", kindName(n))
	}
	if isNull(n) {
		return "", nil
	}
	return n.Value, nil
}

// yaml11Bool resolves a plain scalar as yaml.v2 (YAML 1.1), which Helm
// decodes with, resolves booleans.
func yaml11Bool(s string) (value, ok bool) {
	switch s {
	case "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON":
		return true, true
	case "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF":
		return false, true
	}
	return false, false
}

// helmBool reads a boolean field: YAML 1.1 booleans written plain; null is
// false. Helm fails the whole index on anything else; this skips the entry.
func helmBool(n *yaml.Node) (bool, error) {
	n = deref(n)
	if isNull(n) {
		return false, nil
	}
	if n.Kind == yaml.ScalarNode && n.Style&quotedStyles == 0 {
		if b, ok := yaml11Bool(n.Value); ok {
			return b, nil
		}
	}
	return false, fmt.Errorf("%q is not a boolean", n.Value)
}

// helmTime reads an RFC 3339 time as encoding/json does. Helm fails the whole
// index on another format; a catalog is better off with a zero time.
func helmTime(n *yaml.Node) (time.Time, error) {
	s, err := helmString(n)
	if err != nil || s == "" {
		return time.Time{}, err
	}
	var t time.Time
	if t.UnmarshalText([]byte(s)) != nil {
		return time.Time{}, nil
	}
	return t, nil
}
