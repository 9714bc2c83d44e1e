package chartarchive

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Violation is one place where values fail a chart's schema.
type Violation struct {
	Path    string // JSON pointer into the values ("/image/tag"); "" for the root
	Message string // e.g. "got string, want integer"
}

func (v Violation) String() string { return v.Path + ": " + v.Message }

// ErrSchema is wrapped when a chart's values.schema.json is not valid JSON or
// does not compile, which is the chart's fault and not a violation by the values.
var ErrSchema = errors.New("invalid values.schema.json")

// ErrTooCostly is returned, without validating, when checking the values
// against the schema could take more work than Validate allows: a recursive or
// heavily branching schema over deep or large values. It is not a violation.
var ErrTooCostly = errors.New("values too costly to check against values.schema.json")

// schemaURL names the schema inside the compiler. The scheme is one no loader
// serves, so relative $refs resolve to names that cannot be fetched.
const schemaURL = "chart:///values.schema.json"

var printer = message.NewPrinter(language.English)

// noLoader refuses every $ref outside the schema itself. The compiler's
// default loader reads file:// URLs, which would let a tenant's schema read
// this host's files; and nothing here may reach the network.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("schema refers to %s: only references inside values.schema.json are allowed", url)
}

// Validate checks values against a chart's values.schema.json and returns every
// failing place, sorted by path. A nil or empty schema has nothing to check.
// Values are compared as JSON, the way Helm does when it validates.
func Validate(schemaJSON []byte, values map[string]any) ([]Violation, error) {
	if len(schemaJSON) == 0 {
		return nil, nil
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return nil, fmt.Errorf("%w: parse: %w", ErrSchema, err)
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(noLoader{})
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSchema, err)
	}
	sch, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("%w: compile: %w", ErrSchema, err)
	}

	if values == nil {
		values = map[string]any{}
	}
	raw, err := json.Marshal(values)
	if err != nil {
		return nil, fmt.Errorf("values as JSON: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("values as JSON: %w", err)
	}

	if !withinBudget(sch, inst) {
		return nil, fmt.Errorf("%w: over %d steps", ErrTooCostly, maxValidationCost)
	}
	err = sch.Validate(inst)
	if err == nil {
		return nil, nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil, fmt.Errorf("validate values: %w", err)
	}
	var out []Violation
	collect(ve, &out)
	slices.SortFunc(out, func(a, b Violation) int {
		return cmp.Or(strings.Compare(a.Path, b.Path), strings.Compare(a.Message, b.Message))
	})
	return slices.Compact(out), nil
}

// collect keeps the leaves of the error tree: the inner nodes only say that
// a subschema ("allOf", "$ref", "properties") failed because of them.
func collect(e *jsonschema.ValidationError, out *[]Violation) {
	if len(e.Causes) == 0 {
		*out = append(*out, Violation{Path: pointer(e.InstanceLocation), Message: e.ErrorKind.LocalizedString(printer)})
		return
	}
	for _, c := range e.Causes {
		collect(c, out)
	}
}

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// pointer renders a location as a JSON pointer (RFC 6901).
func pointer(loc []string) string {
	var sb strings.Builder
	for _, tok := range loc {
		sb.WriteByte('/')
		sb.WriteString(pointerEscaper.Replace(tok))
	}
	return sb.String()
}
