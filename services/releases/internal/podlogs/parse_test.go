package podlogs

import (
	"bufio"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestReadLine(t *testing.T) {
	long := strings.Repeat("x", 100)
	for _, tc := range []struct {
		name, in  string
		limit     int
		want      []string
		wantCut   []bool
		bufferLen int
	}{
		{name: "lines", in: "a\nbb\n\nccc", limit: 10, want: []string{"a", "bb", "", "ccc"}, wantCut: []bool{false, false, false, false}},
		{name: "cut", in: long + "\nnext\n", limit: 10, want: []string{long[:10], "next"}, wantCut: []bool{true, false}},
		{name: "cut past the buffer", in: long + long + "\nnext\n", limit: 150, bufferLen: 16, want: []string{(long + long)[:150], "next"}, wantCut: []bool{true, false}},
		{name: "exactly the limit", in: long[:10] + "\n", limit: 10, want: []string{long[:10]}, wantCut: []bool{false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(tc.in), max(tc.bufferLen, 16))
			var got []string
			var cuts []bool
			for {
				l, cut, err := readLine(br, tc.limit)
				if len(l) > 0 || err == nil {
					got, cuts = append(got, string(l)), append(cuts, cut)
				}
				if err != nil {
					break
				}
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("lines %q, want %q", got, tc.want)
			}
			for i := range cuts {
				if i < len(tc.wantCut) && cuts[i] != tc.wantCut[i] {
					t.Errorf("line %d cut %v, want %v", i, cuts[i], tc.wantCut[i])
				}
			}
		})
	}
}

func TestParseLogLine(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	for _, tc := range []struct {
		name, in string
		want     Line
	}{
		{name: "timestamped", in: ts.Format(time.RFC3339Nano) + " hello world", want: Line{Time: ts, Line: "hello world"}},
		{name: "no timestamp", in: "hello world", want: Line{Line: "hello world"}},
		{name: "carriage return", in: ts.Format(time.RFC3339Nano) + " dos\r", want: Line{Time: ts, Line: "dos"}},
		{name: "invalid UTF-8", in: "a\xffb", want: Line{Line: "a\uFFFDb"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parseLogLine([]byte(tc.in))
			if !got.Time.Equal(tc.want.Time) || got.Line != tc.want.Line || got.Truncated != tc.want.Truncated {
				t.Errorf("parse %q = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
	t.Run("cut at a rune", func(t *testing.T) {
		got := parseLogLine([]byte("a" + strings.Repeat("é", MaxLine)))
		if !got.Truncated || len(got.Line) > MaxLine || !utf8.ValidString(got.Line) || strings.ContainsRune(got.Line, utf8.RuneError) {
			t.Errorf("cut line: %d bytes, truncated %v, valid %v", len(got.Line), got.Truncated, utf8.ValidString(got.Line))
		}
	})
}
