package sqldb

import (
	"strconv"
	"strings"
)

// Rebind rewrites a query written with '?' placeholders for d's engine: on
// Postgres the placeholders become $1, $2, ... in order. A '?' inside a
// single-quoted string, a double-quoted identifier or a comment is left alone.
// Postgres operators spelled with '?' (jsonb ?, ?|, ?&) cannot be written in a
// query passed through Rebind; use their function forms.
func (d *DB) Rebind(query string) string {
	if d.Dialect != Postgres {
		return query
	}
	return rebindDollar(query)
}

func rebindDollar(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		// skip is the end of a literal or comment starting at i.
		skip := -1
		switch c := query[i]; {
		case c == '\'' || c == '"':
			// A doubled quote inside a literal closes it and opens the next
			// one, which keeps the '?'s within both untouched.
			skip = indexFrom(query, i+1, string(c)) + 1
		case c == '-' && strings.HasPrefix(query[i:], "--"):
			skip = indexFrom(query, i+2, "\n") + 1
		case c == '/' && strings.HasPrefix(query[i:], "/*"):
			skip = indexFrom(query, i+2, "*/") + 2
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		if skip < 0 {
			b.WriteByte(query[i])
			continue
		}
		skip = min(skip, len(query))
		b.WriteString(query[i:skip])
		i = skip - 1
	}
	return b.String()
}

// indexFrom returns the index of sep in s at or after from, or len(s) when
// sep does not occur (an unterminated literal or comment runs to the end).
func indexFrom(s string, from int, sep string) int {
	if j := strings.Index(s[from:], sep); j >= 0 {
		return from + j
	}
	return len(s)
}
