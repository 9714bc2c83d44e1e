package index

import (
	"bytes"
	"unicode/utf8"
)

// layout is a document cut into the parts parseSplit decodes apart.
type layout struct {
	head, tail []byte   // the top-level lines up to the entries line, and after entries
	charts     [][]byte // one entries pair each, in document order
	lines      []int    // the line each chart part starts on, for errors
}

// split cuts a document laid out as Helm writes it:
//
//	apiVersion: v1
//	entries:
//	  alpine:
//	  - name: alpine
//	    ...
//	generated: "..."
//
// at each line indented exactly as the first key under a bare "entries:"
// line. It only looks at indentation and the first character of lines; it
// refuses (ok false) what would make a cut line mean something else in the
// whole document: document markers and directives, tabs or line breaks other
// than \n and \r\n, a cut line that is not a plain or quoted key. A cut inside
// a quoted or flow scalar leaves a part that does not parse, which
// parseSplit also takes as a refusal.
func split(data []byte) (l layout, ok bool) {
	// The parts are parsed apart, and a YAML reader refuses a whole stream
	// for one bad byte anywhere, so check those once here.
	if !utf8.Valid(data) || hasOddBreak(data) {
		return l, false
	}
	const (
		head = iota
		entries
		tail
	)
	state := head
	indent := 0 // of the keys under entries, once known
	start := 0  // of the current chart part
	seenKey := false
	lineNo := 0
	for pos := 0; pos < len(data); {
		end := bytes.IndexByte(data[pos:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += pos
		}
		line := data[pos:end]
		lineNo++
		lineStart := pos
		pos = end + 1

		n := 0
		for n < len(line) && line[n] == ' ' {
			n++
		}
		rest := line[n:]
		if len(rest) > 0 && rest[0] == '\t' {
			return l, false
		}
		if len(bytes.TrimRight(rest, " \r")) == 0 || rest[0] == '#' {
			continue // blank or comment: belongs to whatever part it is in
		}
		if n == 0 && isMarker(rest) {
			return l, false
		}
		switch state {
		case head:
			if n == 0 && isBareKey(rest, "entries") {
				// The entries line ends the head, which is parsed with it
				// (entries: null), so every byte is parsed in some part.
				l.head = data[:pos]
				start = min(pos, len(data))
				l.lines = append(l.lines, lineNo+1)
				state = entries
			}
		case entries:
			switch {
			case n == 0:
				if !seenKey {
					return l, false // entries has no block mapping under it
				}
				if !isKeyStart(rest[0]) || isSeqItem(rest) {
					// The tail must go on with a key of the top-level mapping,
					// not something a part parsed alone reads otherwise.
					return l, false
				}
				l.charts = append(l.charts, data[start:lineStart])
				l.tail = data[lineStart:]
				state = tail // only checked for markers from here on
				continue
			case indent == 0:
				indent = n
			case n > indent:
				continue
			case n < indent:
				return l, false
			}
			if isSeqItem(rest) {
				if !seenKey {
					return l, false // entries is a list
				}
				continue // Helm writes a chart's versions at its key's indentation
			}
			if !isKeyStart(rest[0]) {
				return l, false
			}
			if seenKey {
				// The first part starts after the entries line, with
				// whatever blank lines and comments come before its key.
				l.charts = append(l.charts, data[start:lineStart])
				l.lines = append(l.lines, lineNo)
				start = lineStart
			}
			seenKey = true
		}
	}
	switch {
	case state == tail:
		return l, true
	case state != entries || !seenKey:
		return l, false
	}
	l.charts = append(l.charts, data[start:])
	return l, true
}

// hasOddBreak reports line breaks YAML (libyaml) sees that a split on '\n'
// would not: a lone \r, NEL, LINE and PARAGRAPH SEPARATOR.
func hasOddBreak(data []byte) bool {
	for i := 0; ; {
		j := bytes.IndexByte(data[i:], '\r')
		if j < 0 {
			break
		}
		i += j + 1
		if i == len(data) || data[i] != '\n' {
			return true
		}
	}
	return bytes.Contains(data, []byte("\u0085")) || bytes.Contains(data, []byte("\u2028")) || bytes.Contains(data, []byte("\u2029"))
}

// isMarker reports a directive or a document start or end marker.
func isMarker(rest []byte) bool {
	if rest[0] == '%' {
		return true
	}
	if bytes.HasPrefix(rest, []byte("---")) || bytes.HasPrefix(rest, []byte("...")) {
		return len(rest) == 3 || rest[3] == ' ' || rest[3] == '\r'
	}
	// A byte order mark may start a document anew.
	return bytes.HasPrefix(rest, []byte("\ufeff"))
}

// isBareKey reports a line that is only "key:", maybe with a comment.
func isBareKey(rest []byte, key string) bool {
	if !bytes.HasPrefix(rest, []byte(key+":")) {
		return false
	}
	after := bytes.TrimLeft(rest[len(key)+1:], " ")
	after = bytes.TrimRight(after, "\r")
	return len(after) == 0 || after[0] == '#' && len(after) < len(rest[len(key)+1:])
}

func isSeqItem(rest []byte) bool {
	return rest[0] == '-' && (len(rest) == 1 || rest[1] == ' ' || rest[1] == '\r')
}

// isKeyStart reports a first character that can start a plain or quoted
// implicit key. Indicators that would start a tag, anchor, alias, explicit
// key, flow collection or block scalar are refused.
func isKeyStart(c byte) bool {
	switch c {
	case '?', ':', ',', '[', ']', '{', '}', '&', '*', '!', '|', '>', '%', '@', '`', '#':
		return false
	}
	return true
}
