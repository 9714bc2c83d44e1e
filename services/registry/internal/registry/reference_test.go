package registry

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/distribution/reference"

	"github.com/slipwayhq/slipway/pkg/validate"
)

func TestParseReference(t *testing.T) {
	const d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	tests := []struct {
		in, wantRef, wantDigest string
		wantErr                 bool
	}{
		{in: "nginx", wantRef: "docker.io/library/nginx"},
		{in: "nginx:1.27", wantRef: "docker.io/library/nginx:1.27"},
		{in: "ghcr.io/acme/api:1.4.2", wantRef: "ghcr.io/acme/api:1.4.2"},
		{in: "localhost:5000/app@" + d, wantRef: "localhost:5000/app@" + d, wantDigest: d},
		{in: "ghcr.io/acme/app:1.0@" + d, wantRef: "ghcr.io/acme/app:1.0@" + d, wantDigest: d},
		{in: "", wantErr: true},
		{in: "ghcr.io/Acme/app:1", wantErr: true},
		{in: "ghcr.io/acme/app:-bad", wantErr: true},
		{in: "ghcr.io/acme/app@sha256:short", wantErr: true},
		{in: "ghcr.io/" + strings.Repeat("a", MaxReferenceLen), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			ref, digest, err := parseReference(tc.in)
			if tc.wantErr {
				if fe, ok := validate.AsFieldError(err); !ok || fe.Field != "reference" {
					t.Fatalf("parseReference(%q) error = %v, want a reference field error", tc.in, err)
				}
				return
			}
			if err != nil || ref != tc.wantRef || digest != tc.wantDigest {
				t.Errorf("parseReference(%q) = %q, %q, %v; want %q, %q", tc.in, ref, digest, err, tc.wantRef, tc.wantDigest)
			}
		})
	}
}

// FuzzParseReference checks that whatever parseReference accepts is a
// canonical reference: parsing it again gives itself and the same digest.
func FuzzParseReference(f *testing.F) {
	file, err := os.Open("testdata/references.txt")
	if err != nil {
		f.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		f.Add(sc.Text())
	}
	f.Fuzz(func(t *testing.T, in string) {
		ref, digest, err := parseReference(in)
		if err != nil {
			if _, ok := validate.AsFieldError(err); !ok {
				t.Fatalf("parseReference(%q) error %v is not a field error", in, err)
			}
			return
		}
		if len(ref) > MaxReferenceLen+len("docker.io/library/") {
			t.Fatalf("accepted reference of %d bytes", len(ref))
		}
		again, digest2, err := parseReference(ref)
		if err != nil || again != ref || digest2 != digest {
			t.Fatalf("parseReference(%q) = %q, %q, %v; not canonical (from %q)", ref, again, digest2, err, in)
		}
		if _, err := reference.ParseNamed(ref); err != nil {
			t.Fatalf("canonical %q is not fully qualified: %v", ref, err)
		}
	})
}
