package paging

import (
	"testing"

	"github.com/slipwayhq/slipway/pkg/validate"
)

func TestSize(t *testing.T) {
	tests := []struct {
		name    string
		in      int32
		want    int
		wantErr bool
	}{
		{name: "unset", in: 0, want: DefaultSize},
		{name: "explicit", in: 7, want: 7},
		{name: "max", in: MaxSize, want: MaxSize},
		{name: "clamped", in: MaxSize + 1, want: MaxSize},
		{name: "negative", in: -1, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Size(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Size(%d) error = %v, wantErr %v", tc.in, err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("Size(%d) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}

func TestTokenRoundTrip(t *testing.T) {
	fp := Fingerprint("acme", "api", "")
	tok := Encode("01J0000000", fp)
	got, err := Decode(tok, fp)
	if err != nil || got != "01J0000000" {
		t.Fatalf("Decode(Encode(x)) = %q, %v; want x", got, err)
	}
	if got, err := Decode("", fp); err != nil || got != "" {
		t.Errorf(`Decode("") = %q, %v; want "", nil`, got, err)
	}
}

func TestDecodeRejects(t *testing.T) {
	fp := Fingerprint("acme", "api")
	tests := []struct{ name, tok string }{
		{name: "other filters", tok: Encode("k", Fingerprint("acme", "web"))},
		{name: "other org", tok: Encode("k", Fingerprint("globex", "api"))},
		{name: "not base64", tok: "!!!"},
		{name: "not json", tok: "bm90IGpzb24"},
		{name: "empty key", tok: Encode("", fp)},
		{name: "too long", tok: string(make([]byte, maxTokenLen+1))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.tok, fp)
			fe, ok := validate.AsFieldError(err)
			if !ok || fe.Field != "page_token" {
				t.Fatalf("Decode(%q) error = %v, want a page_token field error", tc.tok, err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	fp := Fingerprint("acme")
	f.Add(Encode("01J0000000", fp))
	f.Add("")
	f.Add("e30")
	f.Add("eyJhIjoieCIsImYiOiIifQ")
	f.Fuzz(func(t *testing.T, tok string) {
		after, err := Decode(tok, fp)
		if err != nil {
			if _, ok := validate.AsFieldError(err); !ok {
				t.Fatalf("Decode error %v is not a field error", err)
			}
			return
		}
		if tok != "" && after == "" {
			t.Fatalf("Decode(%q) accepted a token with no key", tok)
		}
		// Anything accepted must re-encode to a token that decodes the same.
		if again, err := Decode(Encode(after, fp), fp); tok != "" && (err != nil || again != after) {
			t.Fatalf("re-encoded token decodes to %q, %v; want %q", again, err, after)
		}
	})
}
