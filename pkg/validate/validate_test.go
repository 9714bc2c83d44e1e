package validate

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestDNSLabel(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string // substring of the reason; "" means valid
	}{
		{name: "simple", in: "web"},
		{name: "single letter", in: "a"},
		{name: "single digit", in: "7"},
		{name: "leading digit", in: "1web"},
		{name: "inner hyphens", in: "web-api--v2"},
		{name: "63 chars", in: strings.Repeat("a", 63)},
		{name: "empty", in: "", wantErr: "required"},
		{name: "64 chars", in: strings.Repeat("a", 64), wantErr: "at most 63 characters, got 64"},
		{name: "upper case", in: "Web", wantErr: "DNS-1123 label"},
		{name: "leading hyphen", in: "-web", wantErr: "DNS-1123 label"},
		{name: "trailing hyphen", in: "web-", wantErr: "DNS-1123 label"},
		{name: "only hyphen", in: "-", wantErr: "DNS-1123 label"},
		{name: "dots", in: "web.api", wantErr: "DNS-1123 label"},
		{name: "underscore", in: "web_api", wantErr: "DNS-1123 label"},
		{name: "space", in: "web api", wantErr: "DNS-1123 label"},
		{name: "trailing newline", in: "web\n", wantErr: "DNS-1123 label"},
		{name: "unicode", in: "café", wantErr: "DNS-1123 label"},
		{name: "unicode digit", in: "web٣", wantErr: "DNS-1123 label"},
		{name: "invalid utf-8", in: "a\xffb", wantErr: "DNS-1123 label"},
		// 62 ASCII bytes + "é" is 63 runes but 64 bytes: the limit is in bytes.
		{name: "63 runes, 64 bytes", in: strings.Repeat("a", 62) + "é", wantErr: "at most 63 characters, got 64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := DNSLabel("cluster.name", tc.in)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("DNSLabel(%q) = %v, want nil", tc.in, err)
				}
				return
			}
			fe, ok := AsFieldError(err)
			if !ok {
				t.Fatalf("DNSLabel(%q) = %v, want a *FieldError", tc.in, err)
			}
			if fe.Field != "cluster.name" {
				t.Errorf("Field = %q, want cluster.name", fe.Field)
			}
			if !strings.Contains(fe.Reason, tc.wantErr) {
				t.Errorf("Reason = %q, want it to contain %q", fe.Reason, tc.wantErr)
			}
		})
	}
}

func TestMaxLen(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		n       int
		wantErr string
	}{
		{name: "empty", in: "", n: 0},
		{name: "under", in: "abc", n: 4},
		{name: "exact", in: "abcd", n: 4},
		{name: "multi-byte exact", in: "é", n: 2},
		{name: "over", in: "abcde", n: 4, wantErr: "must be at most 4 bytes, got 5"},
		{name: "multi-byte counts bytes", in: "éé", n: 3, wantErr: "must be at most 3 bytes, got 4"},
		{name: "invalid utf-8", in: "a\xffb", n: 10, wantErr: "must be valid UTF-8"},
		{name: "truncated rune", in: "\xc3", n: 10, wantErr: "must be valid UTF-8"},
		{name: "too long and invalid", in: "\xff\xff\xff", n: 2, wantErr: "must be at most 2 bytes, got 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := MaxLen("description", tc.in, tc.n)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("MaxLen(%q, %d) = %v, want nil", tc.in, tc.n, err)
				}
				return
			}
			fe, ok := AsFieldError(err)
			if !ok {
				t.Fatalf("MaxLen(%q, %d) = %v, want a *FieldError", tc.in, tc.n, err)
			}
			if fe.Field != "description" || fe.Reason != tc.wantErr {
				t.Errorf("MaxLen(%q, %d) = %q/%q, want description/%q", tc.in, tc.n, fe.Field, fe.Reason, tc.wantErr)
			}
		})
	}
}

func TestFirst(t *testing.T) {
	e1, e2 := errors.New("one"), errors.New("two")
	tests := []struct {
		name string
		in   []error
		want error
	}{
		{name: "none", in: nil, want: nil},
		{name: "all nil", in: []error{nil, nil}, want: nil},
		{name: "first set", in: []error{e1, e2}, want: e1},
		{name: "skips nil", in: []error{nil, e2, e1}, want: e2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := First(tc.in...); got != tc.want {
				t.Errorf("First = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFieldError(t *testing.T) {
	err := Field("image.reference", "must have a %s", "tag")
	if got, want := err.Error(), "image.reference: must have a tag"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	tests := []struct {
		name   string
		err    error
		wantOK bool
	}{
		{name: "nil", err: nil},
		{name: "plain", err: errors.New("image.reference: must have a tag")},
		{name: "direct", err: err, wantOK: true},
		{name: "wrapped", err: fmt.Errorf("create release: %w", err), wantOK: true},
		{name: "wrapped twice", err: fmt.Errorf("api: %w", fmt.Errorf("create release: %w", err)), wantOK: true},
		{name: "joined", err: errors.Join(errors.New("other"), err), wantOK: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fe, ok := AsFieldError(tc.err)
			if ok != tc.wantOK {
				t.Fatalf("AsFieldError(%v) ok = %v, want %v", tc.err, ok, tc.wantOK)
			}
			if ok && (fe.Field != "image.reference" || fe.Reason != "must have a tag") {
				t.Errorf("AsFieldError = %+v, want the original field error", fe)
			}
		})
	}
}

// FuzzDNSLabel checks DNSLabel against an independent reading of RFC 1123
// section 2.1 as Kubernetes applies it. Seeds live in testdata/fuzz.
func FuzzDNSLabel(f *testing.F) {
	f.Add("web")
	f.Add("a-b")
	f.Add("-")
	f.Add(strings.Repeat("z", 64))
	f.Fuzz(func(t *testing.T, v string) {
		err := DNSLabel("name", v)
		if want := isDNSLabel(v); (err == nil) != want {
			t.Fatalf("DNSLabel(%q) = %v, want valid=%v", v, err, want)
		}
		if err != nil {
			if fe, ok := AsFieldError(err); !ok || fe.Field != "name" {
				t.Fatalf("DNSLabel(%q) error %v is not a field error on name", v, err)
			}
		}
	})
}

func isDNSLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '-' && i > 0 && i < len(s)-1:
		default:
			return false
		}
	}
	return true
}
