package index

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/slipwayhq/slipway/pkg/safeyaml"
)

// parseJSON decodes an index written as JSON (helm repo index --json), which
// Helm reads with encoding/json rather than as YAML. Once json.Valid has
// accepted the document this path decides it, as Helm's does: strings are
// decoded as encoding/json decodes them (\/ and surrogate pairs included,
// which yaml.v3 refuses), and numbers, booleans and null are taken as YAML
// reads them in the other paths, so the decoder sees the tree yaml.v3 would
// give. Charts are parsed in parallel from their spans in the entries object.
// errNoSplit means the data is not JSON.
func parseJSON(data []byte, lim Limits) (*Index, error) {
	s := jsonScanner{b: data, line: 1}
	s.ws()
	if s.pos >= len(data) || data[s.pos] != '{' || !json.Valid(data) {
		return nil, errNoSplit
	}
	type span struct{ start, end, line int }
	var (
		h       header
		charts  []span
		entries bool
	)
	s.pos++
	for {
		s.ws()
		if data[s.pos] == '}' {
			break
		}
		key := s.stringValue()
		s.ws()
		s.pos++ // ':'
		s.ws()
		isEntries, err := false, error(nil)
		switch strings.ToLower(key) {
		case "apiversion", "generated":
			start, line := s.pos, s.line
			s.skipValue()
			var p jsonParser
			p.reset(string(data[start:s.pos]), line, lim.YAML.MaxDepth, lim.YAML.MaxNodes)
			var v *yaml.Node
			if v, err = p.parseOne(); err == nil {
				isEntries, err = h.set(key, v)
			}
		case "entries":
			isEntries = true
		default:
			s.skipValue()
		}
		if err != nil {
			return nil, err
		}
		if isEntries {
			if entries {
				return nil, fmt.Errorf("%w: entries given twice", ErrInvalid)
			}
			entries = true
			if data[s.pos] != '{' {
				return nil, fmt.Errorf("%w: no entries mapping", ErrInvalid)
			}
			s.pos++
			for {
				s.ws()
				if data[s.pos] == '}' {
					s.pos++
					break
				}
				start, line := s.pos, s.line
				s.skipString()
				s.ws()
				s.pos++ // ':'
				s.ws()
				s.skipValue()
				charts = append(charts, span{start, s.pos, line})
				s.ws()
				if data[s.pos] == ',' {
					s.pos++
				}
			}
		}
		s.ws()
		if data[s.pos] == ',' {
			s.pos++
		}
	}
	if !entries {
		return nil, fmt.Errorf("%w: no entries mapping", ErrInvalid)
	}
	results, err := decodeParallel(len(charts), lim, func() partParser {
		var p jsonParser
		return func(i int) (*yaml.Node, *yaml.Node, int, bool, error) {
			c := charts[i]
			if c.end-c.start > lim.YAML.MaxBytes {
				return nil, nil, 0, false, fmt.Errorf("%w: %w: chart at line %d is %d bytes, more than MaxBytes %d",
					ErrTooLarge, safeyaml.ErrLimit, c.line, c.end-c.start, lim.YAML.MaxBytes)
			}
			p.reset(string(data[c.start:c.end]), 1, lim.YAML.MaxDepth, lim.YAML.MaxNodes)
			key, val, err := p.parsePair()
			if err != nil {
				return nil, nil, 0, false, err
			}
			return key, val, c.line - 1, true, nil
		}
	})
	if err != nil {
		return nil, err
	}
	return assemble(h, results, lim)
}

// jsonScanner walks a document json.Valid accepted, skipping values
// without building them and counting lines.
type jsonScanner struct {
	b    []byte
	pos  int
	line int
}

func (s *jsonScanner) ws() {
	for s.pos < len(s.b) {
		switch s.b[s.pos] {
		case '\n':
			s.line++
		case ' ', '\t', '\r':
		default:
			return
		}
		s.pos++
	}
}

func (s *jsonScanner) skipString() {
	s.pos++ // opening quote
	for {
		i := bytes.IndexAny(s.b[s.pos:], "\"\\")
		s.pos += i
		if s.b[s.pos] == '"' {
			s.pos++
			return
		}
		s.pos += 2 // an escape; strings hold no raw line breaks
	}
}

func (s *jsonScanner) stringValue() string {
	start := s.pos
	s.skipString()
	v, _ := unquoteJSON(string(s.b[start:s.pos]), nil)
	return v
}

func (s *jsonScanner) skipValue() {
	switch s.b[s.pos] {
	case '"':
		s.skipString()
	case '{', '[':
		for depth := 0; ; {
			switch s.b[s.pos] {
			case '"':
				s.skipString()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			case '\n':
				s.line++
			}
			s.pos++
			if depth == 0 {
				return
			}
		}
	default:
		for s.pos < len(s.b) && !isJSONDelim(s.b[s.pos]) {
			s.pos++
		}
	}
}

func isJSONDelim(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}

// jsonParser builds the yaml.Node tree of one JSON value (or one entries
// pair) in an arena, as yaml.v3 would parse that JSON: strings are
// double-quoted scalars, numbers and literals plain ones. Values are
// substrings of the chart's text, so the decoder clones what it keeps.
type jsonParser struct {
	arena
	s        string
	pos      int
	line     int
	depth    int
	maxDepth int
	buf      []byte
}

func (p *jsonParser) reset(s string, line, maxDepth, maxNodes int) {
	p.s, p.pos, p.line, p.depth, p.maxDepth = s, 0, line, 0, maxDepth
	p.arena.reset(maxNodes)
}

// parsePair parses `"key": value`.
func (p *jsonParser) parsePair() (key, val *yaml.Node, err error) {
	err = p.guard(func() {
		key = p.parseValue()
		p.ws()
		p.pos++ // ':'
		val = p.parseValue()
	})
	return key, val, err
}

// parseOne parses one value.
func (p *jsonParser) parseOne() (n *yaml.Node, err error) {
	err = p.guard(func() { n = p.parseValue() })
	return n, err
}

// guard turns the arena's and the depth's bounds into ErrTooLarge, as
// safeyaml refuses such trees in the YAML paths.
func (p *jsonParser) guard(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if r != errBound {
				panic(r)
			}
			err = fmt.Errorf("%w: %w: value at line %d nests deeper than %d or holds more than %d nodes",
				ErrTooLarge, safeyaml.ErrLimit, p.line, p.maxDepth, p.maxNodes)
		}
	}()
	f()
	return nil
}

func (p *jsonParser) ws() {
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case '\n':
			p.line++
		case ' ', '\t', '\r':
		default:
			return
		}
		p.pos++
	}
}

func (p *jsonParser) parseValue() *yaml.Node {
	p.ws()
	line := p.line
	switch c := p.s[p.pos]; c {
	case '{', '[':
		if p.depth++; p.depth > p.maxDepth {
			panic(errBound)
		}
		kind, tag, end := yaml.MappingNode, "!!map", byte('}')
		if c == '[' {
			kind, tag, end = yaml.SequenceNode, "!!seq", ']'
		}
		n := p.node(kind, line)
		n.Style, n.Tag = yaml.FlowStyle, tag
		mark := len(p.stack)
		p.pos++
		for {
			p.ws()
			if p.s[p.pos] == end {
				p.pos++
				break
			}
			if p.s[p.pos] == ',' {
				p.pos++
				continue
			}
			p.stack = append(p.stack, p.parseValue())
			if kind == yaml.MappingNode {
				p.ws()
				p.pos++ // ':'
				p.stack = append(p.stack, p.parseValue())
			}
		}
		n.Content = p.collect(mark)
		p.depth--
		return n
	case '"':
		start := p.pos
		p.pos++
		for p.s[p.pos] != '"' {
			if p.s[p.pos] == '\\' {
				p.pos++
			}
			p.pos++
		}
		p.pos++
		var v string
		v, p.buf = unquoteJSON(p.s[start:p.pos], p.buf)
		return p.scalar(v, yaml.DoubleQuotedStyle, line)
	default:
		start := p.pos
		for p.pos < len(p.s) && !isJSONDelim(p.s[p.pos]) && p.s[p.pos] != ':' {
			p.pos++
		}
		return p.scalar(p.s[start:p.pos], 0, line)
	}
}

// unquoteJSON decodes a JSON string literal as encoding/json does: invalid
// UTF-8 and lone surrogates become U+FFFD. Without escapes or invalid bytes
// the result is a substring of q.
func unquoteJSON(q string, buf []byte) (string, []byte) {
	body := q[1 : len(q)-1]
	if strings.IndexByte(body, '\\') < 0 && utf8.ValidString(body) {
		return body, buf
	}
	b := buf[:0]
	for i := 0; i < len(body); {
		c := body[i]
		switch {
		case c == '\\':
			e := body[i+1]
			i += 2
			switch e {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hex4(body[i:])
				i += 4
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if i+6 <= len(body) && body[i] == '\\' && body[i+1] == 'u' {
						r2 = hex4(body[i+2:])
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						r = dec
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				b = utf8.AppendRune(b, r)
			default: // " \ /
				b = append(b, e)
			}
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, n := utf8.DecodeRuneInString(body[i:])
			b = utf8.AppendRune(b, r) // RuneError for an invalid byte
			i += n
		}
	}
	return string(b), b
}

func hex4(s string) rune {
	var r rune
	for _, c := range []byte(s[:4]) {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		default:
			r = r<<4 | rune(c-'A'+10)
		}
	}
	return r
}

// errBound stops a jsonParser at its depth or node bound; guard reports it.
var errBound = errors.New("index: JSON value past its bounds")

// arena is memory for jsonParser's trees, reused chart after chart so that
// parsing makes no garbage beyond the chart's text; a tree is valid until the
// next reset.
type arena struct {
	nodes    int
	maxNodes int
	stack    []*yaml.Node // children of the collections being built

	slabs    [][]yaml.Node
	slab     int // slabs[slab][used] is the next free node
	used     int
	ptrSlabs [][]*yaml.Node
	ptrSlab  int
	ptrUsed  int
}

func (a *arena) reset(maxNodes int) {
	a.nodes, a.maxNodes = 0, maxNodes
	a.stack = a.stack[:0]
	a.slab, a.used, a.ptrSlab, a.ptrUsed = 0, 0, 0, 0
}

func (a *arena) node(kind yaml.Kind, line int) *yaml.Node {
	a.nodes++
	if a.nodes > a.maxNodes {
		panic(errBound)
	}
	if a.slab == len(a.slabs) {
		a.slabs = append(a.slabs, make([]yaml.Node, 512))
	}
	n := &a.slabs[a.slab][a.used]
	*n = yaml.Node{Kind: kind, Line: line}
	if a.used++; a.used == len(a.slabs[a.slab]) {
		a.slab, a.used = a.slab+1, 0
	}
	return n
}

// scalar is a scalar node; plain null spellings are tagged !!null as yaml.v3
// resolves them, the rest !!str (the decoder reads no other tag, and a
// quoted "<<" must not be a merge key).
func (a *arena) scalar(value string, style yaml.Style, line int) *yaml.Node {
	n := a.node(yaml.ScalarNode, line)
	n.Value, n.Style = value, style
	n.Tag = "!!str"
	if style == 0 {
		switch value {
		case "", "~", "null", "Null", "NULL":
			n.Tag = "!!null"
		}
	}
	return n
}

// collect moves the nodes pushed since mark into a Content slice.
func (a *arena) collect(mark int) []*yaml.Node {
	kids := a.stack[mark:]
	if len(kids) == 0 {
		return nil
	}
	for a.ptrSlab < len(a.ptrSlabs) && len(a.ptrSlabs[a.ptrSlab])-a.ptrUsed < len(kids) {
		a.ptrSlab, a.ptrUsed = a.ptrSlab+1, 0
	}
	if a.ptrSlab == len(a.ptrSlabs) {
		a.ptrSlabs = append(a.ptrSlabs, make([]*yaml.Node, max(1024, len(kids))))
	}
	start := a.ptrUsed
	a.ptrUsed += copy(a.ptrSlabs[a.ptrSlab][start:], kids)
	a.stack = a.stack[:mark]
	return a.ptrSlabs[a.ptrSlab][start:a.ptrUsed:a.ptrUsed]
}
