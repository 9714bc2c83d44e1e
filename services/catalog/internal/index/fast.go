package index

import (
	"errors"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// parse parses one chart part of a split index into the tree yaml.v3
// would give for it (kinds, values, quoting, lines), for the subset of YAML
// that index writers use: block mappings and sequences (indentless ones
// too), plain, single- and double-quoted scalars over one or more lines,
// literal block scalars, empty flow collections and comments. It gives up
// (ok false) on anything else — anchors, aliases, tags, merge keys, flow
// collections, folded scalars, tabs, odd indentation — and the part then goes
// through yaml.v3. Giving up is always correct; a wrong tree is not, which is
// what FuzzFastParse checks against yaml.v3.
//
// yaml.v3 spends most of an index parse allocating tokens, events and
// strings; this reads the part once into one string, takes values as
// substrings of it and nodes from slabs.
//
// p's memory is reused by the next call: the tree is only valid until then.
func (p *fastParser) parse(chunk []byte, maxDepth, maxNodes int) (node *yaml.Node, ok bool) {
	if !fastBytesOK(chunk) {
		return nil, false
	}
	p.reset(string(chunk), maxDepth, maxNodes)
	defer func() {
		if r := recover(); r != nil {
			if r != errGiveUp {
				panic(r)
			}
			node, ok = nil, false
		}
	}()
	p.splitLines()
	li := p.nextSig(0)
	if li < 0 {
		return nil, false
	}
	L := p.lines[li]
	m := p.mapping(L.indent, li, L.indent)
	if p.nextSig(p.i) >= 0 {
		p.giveUp()
	}
	return m, true
}

var errGiveUp = errors.New("fast parse: outside the subset")

// fastMaxDepth: index entries nest five deep; deeper trees are left to
// yaml.v3 and safeyaml's limits.
const fastMaxDepth = 16

// fastBytesOK refuses characters YAML does not allow in a stream (which
// yaml.v3 reports as errors) and tabs, which the subset leaves out.
func fastBytesOK(b []byte) bool {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '\n':
			case c == '\r':
				if i+1 >= len(b) || b[i+1] != '\n' {
					return false
				}
			case c < 0x20 || c == 0x7f:
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			return false
		case r >= 0x80 && r <= 0x9f, r == 0xfeff, r == 0xfffe, r == 0xffff, r == 0x2028, r == 0x2029:
			return false
		}
		i += n
	}
	return true
}

type fastLine struct {
	start, end int // of the text, without the line break
	indent     int // leading spaces
	sig        bool
}

// fastParser holds one worker's parse state and the arena its trees are
// built in.
type fastParser struct {
	arena
	s        string
	lines    []fastLine
	i        int // next line not yet consumed
	depth    int
	maxDepth int
	buf      []byte
}

func (p *fastParser) reset(s string, maxDepth, maxNodes int) {
	p.s, p.maxDepth = s, maxDepth
	p.lines = p.lines[:0]
	p.i, p.depth = 0, 0
	p.arena.reset(maxNodes)
}

// arena is memory for node trees, reused part after part so that parsing
// makes no garbage beyond the part's text; a tree is valid until the next
// reset.
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

// fastParse parses with a parser of its own, for tests.
func fastParse(chunk []byte, maxDepth, maxNodes int) (*yaml.Node, bool) {
	return new(fastParser).parse(chunk, maxDepth, maxNodes)
}

func (p *fastParser) giveUp() { panic(errGiveUp) }

func (p *fastParser) splitLines() {
	s := p.s
	for pos := 0; pos < len(s); {
		end := strings.IndexByte(s[pos:], '\n')
		next := 0
		if end < 0 {
			end, next = len(s), len(s)
		} else {
			end += pos
			next = end + 1
		}
		textEnd := end
		if textEnd > pos && s[textEnd-1] == '\r' {
			textEnd--
		}
		n := 0
		for pos+n < textEnd && s[pos+n] == ' ' {
			n++
		}
		sig := pos+n < textEnd && s[pos+n] != '#'
		p.lines = append(p.lines, fastLine{start: pos, end: textEnd, indent: n, sig: sig})
		pos = next
	}
}

// nextSig is the first line from i holding more than blanks or a comment, or -1.
func (p *fastParser) nextSig(i int) int {
	for ; i < len(p.lines); i++ {
		if p.lines[i].sig {
			return i
		}
	}
	return -1
}

// text is line li from column col.
func (p *fastParser) text(li, col int) string {
	L := p.lines[li]
	if L.start+col > L.end {
		return ""
	}
	return p.s[L.start+col : L.end]
}

// restIsEmpty reports whether only blanks or a comment follow on a line.
func restIsEmpty(r string) bool {
	r = strings.TrimLeft(r, " ")
	return r == "" || r[0] == '#'
}

func (a *arena) node(kind yaml.Kind, line int) *yaml.Node {
	a.nodes++
	if a.nodes > a.maxNodes {
		panic(errGiveUp)
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

func (p *fastParser) enter() {
	if p.depth++; p.depth > p.maxDepth {
		p.giveUp() // yaml.v3 and safeyaml judge deep trees
	}
}

// mapping parses a block mapping whose keys sit at column indent; its first
// key is on line li at column col (col > the line's indentation for a mapping
// that starts on a sequence item's line).
func (p *fastParser) mapping(indent, li, col int) *yaml.Node {
	p.enter()
	m := p.node(yaml.MappingNode, li+1)
	mark := len(p.stack)
	for first := true; ; first = false {
		if !first {
			li = p.nextSig(p.i)
			if li < 0 || p.lines[li].indent < indent {
				break
			}
			L := p.lines[li]
			if L.indent > indent || isSeqItem([]byte(p.text(li, L.indent))) {
				p.giveUp()
			}
			col = indent
		}
		key, rest := p.key(li, col)
		p.stack = append(p.stack, key)
		p.stack = append(p.stack, p.value(li, col+len(p.text(li, col))-len(rest), indent, true))
	}
	m.Content = p.collect(mark)
	p.depth--
	return m
}

// key parses an implicit key at line li, column col, and returns it and the
// text after its colon.
func (p *fastParser) key(li, col int) (*yaml.Node, string) {
	t := p.text(li, col)
	if t == "" {
		p.giveUp()
	}
	var k *yaml.Node
	var rest string
	switch t[0] {
	case '"', '\'':
		v, n, ok := quotedOneLine(t)
		if !ok {
			p.giveUp()
		}
		style := yaml.DoubleQuotedStyle
		if t[0] == '\'' {
			style = yaml.SingleQuotedStyle
		}
		k = p.scalar(v, style, li+1)
		after := strings.TrimLeft(t[n:], " ")
		if after == "" || after[0] != ':' || len(after) > 1 && after[1] != ' ' {
			p.giveUp()
		}
		rest = after[1:]
	default:
		c := plainKeyEnd(t)
		if c < 0 {
			p.giveUp()
		}
		name := strings.TrimRight(t[:c], " ")
		if name == "" || name == "<<" || len(name) > 1000 {
			p.giveUp()
		}
		k = p.scalar(name, 0, li+1)
		rest = t[c+1:]
	}
	return k, rest
}

// plainKeyEnd is the index of the colon ending a plain implicit key at the
// start of t, or -1 when t does not start with one this parser takes.
func plainKeyEnd(t string) int {
	if t == "" || isIndicator(t[0]) {
		return -1
	}
	for i := 0; i < len(t); i++ {
		switch t[i] {
		case ':':
			if i+1 == len(t) || t[i+1] == ' ' {
				return i
			}
		case '#':
			if t[i-1] == ' ' {
				return -1
			}
		}
	}
	return -1
}

func isIndicator(c byte) bool {
	return strings.IndexByte("-?:,[]{}#&*!|>'\"%@`", c) >= 0
}

// looksLikeKey reports whether t starts with an implicit key.
func looksLikeKey(t string) bool {
	if t == "" {
		return false
	}
	if t[0] == '"' || t[0] == '\'' {
		_, n, ok := quotedOneLine(t)
		if !ok {
			return false
		}
		after := strings.TrimLeft(t[n:], " ")
		return after != "" && after[0] == ':' && (len(after) == 1 || after[1] == ' ')
	}
	return plainKeyEnd(t) >= 0
}

// quotedOneLine reads a quoted scalar closed on the same line, returning its
// value and length; escapes beyond \" and \\ (and ” in single quotes) are
// left to the full scalar reader, so it reports !ok for them.
func quotedOneLine(t string) (string, int, bool) {
	q := t[0]
	for i := 1; i < len(t); i++ {
		switch t[i] {
		case q:
			if q == '\'' && i+1 < len(t) && t[i+1] == '\'' {
				return "", 0, false
			}
			return t[1:i], i + 1, true
		case '\\':
			if q == '"' {
				return "", 0, false
			}
		}
	}
	return "", 0, false
}

// value parses the node after a key's colon or a sequence item's dash: rest
// of line li from column col, in a collection at column indent. inMapping
// allows an indentless sequence on the next lines.
func (p *fastParser) value(li, col, indent int, inMapping bool) *yaml.Node {
	t := p.text(li, col)
	r := strings.TrimLeft(t, " ")
	col += len(t) - len(r)
	if r == "" || r[0] == '#' {
		if len(t) == len(r) && r != "" {
			p.giveUp() // "key:#" is not a comment
		}
		p.i = li + 1
		return p.nested(li, indent, inMapping)
	}
	switch r[0] {
	case '"', '\'':
		return p.quoted(li, col, indent)
	case '|':
		return p.literal(li, col, indent)
	case '[', '{':
		kind := yaml.SequenceNode
		if r[0] == '{' {
			kind = yaml.MappingNode
		}
		if len(r) < 2 || r[1] != r[0]+2 || !restIsEmpty(r[2:]) || len(r) > 2 && r[2] != ' ' {
			p.giveUp()
		}
		n := p.node(kind, li+1)
		n.Style = yaml.FlowStyle
		if kind == yaml.SequenceNode {
			n.Tag = "!!seq"
		} else {
			n.Tag = "!!map"
		}
		p.i = li + 1
		return n
	case '-':
		if len(r) == 1 || r[1] == ' ' {
			p.giveUp()
		}
	case '?', ':':
		if len(r) == 1 || r[1] == ' ' {
			p.giveUp()
		}
	case '&', '*', '!', '%', '@', '`', ',', ']', '}', '>':
		p.giveUp()
	}
	return p.plain(li, col, indent)
}

// nested parses what follows a key or dash that ends its line: a block
// collection on the next lines, or null.
func (p *fastParser) nested(li, indent int, inMapping bool) *yaml.Node {
	next := p.nextSig(p.i)
	if next >= 0 {
		L := p.lines[next]
		t := p.text(next, L.indent)
		seq := isSeqItem([]byte(t))
		switch {
		case L.indent > indent && seq:
			return p.sequence(L.indent, false)
		case L.indent > indent && looksLikeKey(t):
			return p.mapping(L.indent, next, L.indent)
		case L.indent > indent:
			p.giveUp() // a scalar on the next line
		case L.indent == indent && seq && inMapping:
			return p.sequence(L.indent, true)
		}
	}
	return p.scalar("", 0, li+1)
}

// sequence parses a block sequence whose dashes sit at column indent.
func (p *fastParser) sequence(indent int, indentless bool) *yaml.Node {
	p.enter()
	first := p.nextSig(p.i)
	s := p.node(yaml.SequenceNode, first+1)
	s.Tag = "!!seq"
	mark := len(p.stack)
	for {
		li := p.nextSig(p.i)
		if li < 0 || p.lines[li].indent < indent {
			break
		}
		L := p.lines[li]
		t := p.text(li, indent)
		if L.indent > indent {
			p.giveUp()
		}
		if !isSeqItem([]byte(t)) {
			if indentless {
				break // the parent mapping's next key
			}
			p.giveUp()
		}
		after := t[1:]
		r := strings.TrimLeft(after, " ")
		col := indent + 1 + len(after) - len(r)
		var item *yaml.Node
		switch {
		case r == "" || r[0] == '#':
			p.i = li + 1
			item = p.nested(li, indent, false)
		case looksLikeKey(r):
			item = p.mapping(col, li, col)
		default:
			item = p.value(li, col, indent, false)
		}
		p.stack = append(p.stack, item)
	}
	s.Content = p.collect(mark)
	p.depth--
	return s
}

// plain parses a plain scalar starting at line li, column col, continued on
// lines indented past indent, folding lines as YAML does.
func (p *fastParser) plain(li, col, indent int) *yaml.Node {
	first, done := plainText(p.text(li, col))
	if first == "" {
		p.giveUp()
	}
	p.i = li + 1
	if done {
		return p.scalar(first, 0, li+1)
	}
	b := p.buf[:0]
	multi := false
	empties := 0
	for j := li + 1; j < len(p.lines); j++ {
		L := p.lines[j]
		if L.indent == L.end-L.start { // blank
			empties++
			continue
		}
		if L.indent <= indent || !L.sig {
			break // less indented, or a comment: the scalar ends
		}
		t := p.text(j, L.indent)
		if isIndicator(t[0]) {
			p.giveUp()
		}
		more, stop := plainText(t)
		if !multi {
			b = append(b, first...)
			multi = true
		}
		if empties == 0 {
			b = append(b, ' ')
		}
		for ; empties > 0; empties-- {
			b = append(b, '\n')
		}
		b = append(b, more...)
		p.i = j + 1
		if stop {
			break
		}
	}
	p.buf = b
	if !multi {
		return p.scalar(first, 0, li+1)
	}
	return p.scalar(string(b), 0, li+1)
}

// plainText is one line of a plain scalar without trailing blanks; done is
// true when a comment ends it. A ": " would start a mapping where none can
// be, which yaml.v3 reports; the parser gives up on it.
func plainText(t string) (text string, done bool) {
	end := len(t)
	for i := 0; i < len(t); i++ {
		switch t[i] {
		case ':':
			if i+1 == len(t) || t[i+1] == ' ' {
				panic(errGiveUp)
			}
		case '#':
			if i > 0 && t[i-1] == ' ' {
				end, done = i, true
				i = len(t)
			}
		}
	}
	return strings.TrimRight(t[:end], " "), done
}

// quoted parses a single- or double-quoted scalar starting at line li,
// column col, folding line breaks as YAML does.
func (p *fastParser) quoted(li, col, indent int) *yaml.Node {
	t := p.text(li, col)
	q := t[0]
	style := yaml.DoubleQuotedStyle
	if q == '\'' {
		style = yaml.SingleQuotedStyle
	}
	// The common case: closed on this line without escapes.
	if v, n, ok := quotedOneLine(t); ok {
		if !restIsEmpty(t[n:]) || n < len(t) && t[n] != ' ' {
			p.giveUp()
		}
		p.i = li + 1
		return p.scalar(v, style, li+1)
	}
	b := p.buf[:0]
	j, pos := li, 1
	for {
		line := p.text(j, col)
		if j != li {
			line = p.text(j, 0)
		}
		closed := false
		escapedBreak := false
		i := pos
		for i < len(line) && !closed {
			c := line[i]
			switch {
			case c == q && q == '\'' && i+1 < len(line) && line[i+1] == '\'':
				b = append(b, '\'')
				i += 2
			case c == q:
				closed = true
				i++
			case c == '\\' && q == '"':
				if i+1 == len(line) {
					escapedBreak = true
					i++
					continue
				}
				var ok bool
				b, i, ok = unescape(b, line, i)
				if !ok {
					p.giveUp()
				}
			case c == ' ':
				// Blanks before a line break are dropped.
				k := i
				for k < len(line) && line[k] == ' ' {
					k++
				}
				if k == len(line) {
					i = k
					continue
				}
				b = append(b, line[i:k]...)
				i = k
			default:
				b = append(b, c)
				i++
			}
		}
		if closed {
			if !restIsEmpty(line[i:]) || i < len(line) && line[i] != ' ' {
				p.giveUp()
			}
			p.i = j + 1
			break
		}
		// A line break inside the scalar: fold it with the empty lines
		// after it; an escaped break joins without a space.
		empties := 0
		for j++; j < len(p.lines) && p.lines[j].indent == p.lines[j].end-p.lines[j].start; j++ {
			empties++
		}
		if j >= len(p.lines) || p.lines[j].indent <= indent {
			p.giveUp()
		}
		switch {
		case escapedBreak:
		case empties == 0:
			b = append(b, ' ')
		}
		for ; empties > 0; empties-- {
			b = append(b, '\n')
		}
		pos = p.lines[j].indent
	}
	p.buf = b
	return p.scalar(string(b), style, li+1)
}

// unescape appends the double-quoted escape at line[i] to b.
func unescape(b []byte, line string, i int) ([]byte, int, bool) {
	c := line[i+1]
	if r, ok := simpleEscapes[c]; ok {
		return utf8.AppendRune(b, r), i + 2, true
	}
	width := 0
	switch c {
	case 'x':
		width = 2
	case 'u':
		width = 4
	case 'U':
		width = 8
	default:
		return b, i, false
	}
	if i+2+width > len(line) {
		return b, i, false
	}
	var r rune
	for _, h := range []byte(line[i+2 : i+2+width]) {
		switch {
		case '0' <= h && h <= '9':
			r = r<<4 | rune(h-'0')
		case 'a' <= h && h <= 'f':
			r = r<<4 | rune(h-'a'+10)
		case 'A' <= h && h <= 'F':
			r = r<<4 | rune(h-'A'+10)
		default:
			return b, i, false
		}
	}
	if r >= 0xd800 && r <= 0xdfff || r > 0x10ffff {
		return b, i, false
	}
	return utf8.AppendRune(b, r), i + 2 + width, true
}

var simpleEscapes = map[byte]rune{
	'0': 0, 'a': '\a', 'b': '\b', 't': '\t', 'n': '\n', 'v': '\v', 'f': '\f', 'r': '\r',
	'e': 0x1b, ' ': ' ', '"': '"', '\'': '\'', '\\': '\\', 'N': 0x85, '_': 0xa0, 'L': 0x2028, 'P': 0x2029,
}

// literal parses a "|" or "|-" block scalar whose header is at line li,
// column col, in a collection at column indent.
func (p *fastParser) literal(li, col, indent int) *yaml.Node {
	h := p.text(li, col+1)
	strip := false
	if h != "" && h[0] == '-' {
		strip, h = true, h[1:]
	}
	if !restIsEmpty(h) || h != "" && h[0] != ' ' {
		p.giveUp() // keep chomping, an indentation indicator, or junk
	}
	// Content indentation is the first non-blank line's; blank lines before
	// it may not be longer.
	j := li + 1
	longest := 0
	for ; j < len(p.lines) && p.lines[j].indent == p.lines[j].end-p.lines[j].start; j++ {
		longest = max(longest, p.lines[j].indent)
	}
	if j >= len(p.lines) || p.lines[j].indent <= indent || longest > p.lines[j].indent {
		p.giveUp() // empty, or what yaml.v3 would refuse
	}
	ci := p.lines[j].indent
	b := p.buf[:0]
	last := li // the last line with content
	for j = li + 1; j < len(p.lines); j++ {
		L := p.lines[j]
		blank := L.indent == L.end-L.start
		if !blank && L.indent < ci {
			break
		}
		if blank && L.end-L.start <= ci {
			b = append(b, '\n')
			continue
		}
		b = append(b, p.s[L.start+ci:L.end]...)
		b = append(b, '\n')
		last = j
	}
	if last+1 >= len(p.lines) && !strings.HasSuffix(p.s, "\n") {
		p.giveUp() // no break after the last line; chomping differs at EOF
	}
	// b holds every line with its break; chomping keeps one (clip) or none
	// (strip) of the trailing breaks.
	v := strings.TrimRight(string(b), "\n")
	if !strip {
		v += "\n"
	}
	p.i = last + 1
	p.buf = b
	return p.scalar(v, yaml.LiteralStyle, li+1)
}
