package sqldb_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/slipwayhq/slipway/pkg/sqldb"
)

var rebindTests = []struct {
	name, in, want string
}{
	{name: "none", in: "SELECT 1", want: "SELECT 1"},
	{name: "one", in: "SELECT * FROM t WHERE id = ?", want: "SELECT * FROM t WHERE id = $1"},
	{name: "several", in: "INSERT INTO t (a, b, c) VALUES (?, ?,?)", want: "INSERT INTO t (a, b, c) VALUES ($1, $2,$3)"},
	{name: "ten and more", in: strings.Repeat("?,", 11) + "?", want: "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12"},
	{name: "string literal", in: "SELECT '?' || ?", want: "SELECT '?' || $1"},
	{name: "doubled quote", in: "SELECT 'it''s ?', ?", want: "SELECT 'it''s ?', $1"},
	{name: "quoted identifier", in: `SELECT "a?b" FROM t WHERE x = ?`, want: `SELECT "a?b" FROM t WHERE x = $1`},
	{name: "line comment", in: "SELECT ? -- why?\n, ?", want: "SELECT $1 -- why?\n, $2"},
	{name: "block comment", in: "SELECT /* ? */ ?", want: "SELECT /* ? */ $1"},
	{name: "unterminated literal", in: "SELECT ?, 'oops ?", want: "SELECT $1, 'oops ?"},
	{name: "unterminated comment", in: "SELECT ? /* ?", want: "SELECT $1 /* ?"},
	{name: "lone dash and slash", in: "SELECT ? - ? / ?", want: "SELECT $1 - $2 / $3"},
	{name: "utf-8", in: "SELECT 'ünï?' , ?", want: "SELECT 'ünï?' , $1"},
	{name: "empty", in: "", want: ""},
}

func TestRebind(t *testing.T) {
	pg := &sqldb.DB{Dialect: sqldb.Postgres}
	lite := &sqldb.DB{Dialect: sqldb.SQLite}
	for _, tc := range rebindTests {
		t.Run(tc.name, func(t *testing.T) {
			if got := pg.Rebind(tc.in); got != tc.want {
				t.Errorf("postgres Rebind(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if got := lite.Rebind(tc.in); got != tc.in {
				t.Errorf("sqlite Rebind(%q) = %q, want it unchanged", tc.in, got)
			}
		})
	}
}

// FuzzRebind checks that Postgres rebinding only ever turns '?' into $1, $2,
// ... in order, and is idempotent.
func FuzzRebind(f *testing.F) {
	for _, tc := range rebindTests {
		f.Add(tc.in)
	}
	pg := &sqldb.DB{Dialect: sqldb.Postgres}
	lite := &sqldb.DB{Dialect: sqldb.SQLite}
	f.Fuzz(func(t *testing.T, in string) {
		if got := lite.Rebind(in); got != in {
			t.Fatalf("sqlite Rebind(%q) = %q, want it unchanged", in, got)
		}
		out := pg.Rebind(in)
		if again := pg.Rebind(out); again != out {
			t.Fatalf("Rebind not idempotent: %q -> %q -> %q", in, out, again)
		}
		// Walk both: equal bytes match; a '?' may have become the next $n.
		next, j := 1, 0
		for i := 0; i < len(in); i++ {
			if j < len(out) && in[i] == out[j] {
				j++
				continue
			}
			want := "$" + strconv.Itoa(next)
			if in[i] != '?' || !strings.HasPrefix(out[j:], want) {
				t.Fatalf("Rebind(%q) = %q: byte %d changed to something other than %s", in, out, i, want)
			}
			next++
			j += len(want)
		}
		if j != len(out) {
			t.Fatalf("Rebind(%q) = %q: trailing output %q", in, out, out[j:])
		}
	})
}
