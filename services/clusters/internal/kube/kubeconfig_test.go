package kube

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// fixtureCase is one parse of a testdata kubeconfig. want is a substring
// of the error, or "" for a kubeconfig that must be accepted, in which case
// server and credential describe the Connection.
type fixtureCase struct {
	context    string
	want       string
	notWant    []string // substrings the error must not have
	server     string
	credential string
}

// fixtures maps every file of testdata to its cases; a file missing from
// it fails the test, so a new fixture cannot go unchecked.
var fixtures = map[string][]fixtureCase{
	"bad-anonymous.yaml":               {{want: `user "prod-admin": no credential (token or client certificate): anonymous access is not allowed`}},
	"bad-auth-provider.yaml":           {{want: `user "prod-admin": auth-provider plugins are not allowed`, notWant: []string{"no credential"}}},
	"bad-basic-auth.yaml":              {{want: `user "prod-admin": username/password basic auth is not allowed`}},
	"bad-password-only.yaml":           {{want: `user "prod-admin": username/password basic auth is not allowed`}},
	"bad-ca-bundle-with-key.yaml":      {{want: `cluster "prod-cluster": certificate-authority-data: PEM block 2 is not a CERTIFICATE`}},
	"bad-ca-file.yaml":                 {{want: `cluster "prod-cluster": certificate-authority (a file) is not allowed`}},
	"bad-ca-is-key.yaml":               {{want: `cluster "prod-cluster": certificate-authority-data: PEM block 1 is not a CERTIFICATE`}},
	"bad-ca-not-pem.yaml":              {{want: `cluster "prod-cluster": certificate-authority-data: no PEM certificate found`}},
	"bad-cert-is-key.yaml":             {{want: `user "prod-admin": client-certificate-data: PEM block 1 is not a CERTIFICATE`}},
	"bad-cert-not-pem.yaml":            {{want: `user "prod-admin": client-certificate-data: no PEM certificate found`}},
	"bad-cert-without-key.yaml":        {{want: `user "prod-admin": client-certificate-data without client-key-data`}},
	"bad-client-certificate-file.yaml": {{want: `user "prod-admin": client-certificate (a file) is not allowed`}},
	"bad-client-key-file.yaml":         {{want: `user "prod-admin": client-key (a file) is not allowed`}},
	"bad-comments-only.yaml":           {{want: "kubeconfig: not a YAML mapping"}},
	"bad-context-no-cluster.yaml":      {{want: `kubeconfig: context "prod": names no cluster`}},
	"bad-context-no-user.yaml":         {{want: `kubeconfig: context "prod": names no user`}},
	"bad-empty.yaml":                   {{want: "kubeconfig: empty"}},
	"bad-exec.yaml":                    {{want: `user "prod-admin": exec plugins are not allowed`, notWant: []string{"no credential"}}},
	"bad-http-server.yaml":             {{want: `cluster "prod-cluster": server: must be an https:// URL`}},
	"bad-impersonate-extra.yaml":       {{want: `user "prod-admin": impersonation (as, as-uid, as-groups, as-user-extra) is not allowed`}},
	"bad-impersonate-groups.yaml":      {{want: `user "prod-admin": impersonation`}},
	"bad-impersonate-uid.yaml":         {{want: `user "prod-admin": impersonation`}},
	"bad-impersonate.yaml":             {{want: `user "prod-admin": impersonation`}},
	"bad-insecure.yaml":                {{want: `cluster "prod-cluster": insecure-skip-tls-verify is not allowed`}},
	"bad-key-encrypted.yaml":           {{want: `user "prod-admin": client-key-data: not an unencrypted PEM private key`}},
	"bad-key-mismatch.yaml":            {{want: `user "prod-admin": client-key-data: does not match client-certificate-data`}},
	"bad-key-not-pem.yaml":             {{want: `user "prod-admin": client-key-data: not an unencrypted PEM private key`}},
	"bad-key-without-cert.yaml":        {{want: `user "prod-admin": client-key-data without client-certificate-data`}},
	"bad-list.yaml":                    {{want: "kubeconfig: not a YAML mapping"}},
	"bad-missing-cluster.yaml":         {{want: `kubeconfig: context "prod": cluster "gone" not found`}},
	"bad-missing-context.yaml": {
		{want: `kubeconfig: context "staging" not found`},
		{context: "prod", server: "https://kube.example.com:6443", credential: "token"},
	},
	"bad-missing-user.yaml": {{want: `kubeconfig: context "prod": user "gone" not found`}},
	"bad-no-current-context.yaml": {
		{want: "kubeconfig: no current-context; name the context to use"},
		{context: "prod", server: "https://kube.example.com:6443", credential: "token"},
	},
	"bad-not-base64.yaml":       {{want: "kubeconfig: not a valid kubeconfig"}},
	"bad-not-yaml.yaml":         {{want: "kubeconfig: not valid YAML (line 5)"}},
	"bad-proxy-url.yaml":        {{want: `cluster "prod-cluster": proxy-url is not allowed`}},
	"bad-server-fragment.yaml":  {{want: `cluster "prod-cluster": server: must not have a query or fragment`, notWant: []string{"#frag"}}},
	"bad-server-missing.yaml":   {{want: `cluster "prod-cluster": server: missing`}},
	"bad-server-no-host.yaml":   {{want: `cluster "prod-cluster": server: has no host`}},
	"bad-server-no-scheme.yaml": {{want: `cluster "prod-cluster": server: not a valid URL`, notWant: []string{"kube.example.com"}}},
	"bad-server-port.yaml":      {{want: `cluster "prod-cluster": server: has an invalid port`, notWant: []string{"65536"}}},
	"bad-server-query.yaml":     {{want: `cluster "prod-cluster": server: must not have a query or fragment`, notWant: []string{"token=abc"}}},
	"bad-server-userinfo.yaml":  {{want: `cluster "prod-cluster": server: must not carry a user or password`, notWant: []string{"user:pass", "@"}}},
	// Every problem is reported at once, and a refused plugin is not
	// also called "no credential".
	"bad-several-problems.yaml": {{
		want: `kubeconfig: cluster "prod-cluster": insecure-skip-tls-verify is not allowed: give certificate-authority-data; ` +
			`kubeconfig: cluster "prod-cluster": proxy-url is not allowed: connections go through Slipway's outbound policy; ` +
			`kubeconfig: cluster "prod-cluster": server: must be an https:// URL; ` +
			`kubeconfig: user "prod-admin": exec plugins are not allowed; ` +
			`kubeconfig: user "prod-admin": impersonation (as, as-uid, as-groups, as-user-extra) is not allowed`,
		notWant: []string{"no credential", "socks5", "proxy.internal", "kubelogin"},
	}},
	"bad-tls-server-name.yaml": {{want: `cluster "prod-cluster": tls-server-name: must be a DNS name or an IP address`}},
	"bad-token-and-cert.yaml":  {{want: `user "prod-admin": has both a token and a client certificate`}},
	"bad-token-file.yaml":      {{want: `user "prod-admin": tokenFile is not allowed`, notWant: []string{"/var/run"}}},
	"bad-token-newline.yaml":   {{want: `user "prod-admin": token: must be printable ASCII without spaces or line breaks`}},
	"bad-wrong-kind.yaml":      {{want: "kubeconfig: not a valid kubeconfig", notWant: []string{"Pod"}}},
	"bad-wrong-type.yaml":      {{want: "kubeconfig: not a valid kubeconfig"}},
	"valid-ca-bundle.yaml":     {{server: "https://kube.example.com:6443", credential: "token"}},
	"valid-cert-pkcs8.yaml":    {{server: "https://kube.example.com:6443", credential: "client-certificate"}},
	"valid-cert-rsa.yaml":      {{server: "https://kube.example.com:6443", credential: "client-certificate"}},
	"valid-cert.yaml":          {{server: "https://kube.example.com:6443", credential: "client-certificate"}},
	"valid-ipv6.yaml":          {{server: "https://[2001:db8::1]:6443", credential: "token"}},
	// Only the chosen context is read: the exec user of gke does not
	// matter when dev is asked for, and refuses gke.
	"valid-multi.yaml": {
		{want: `kubeconfig: user "gke": exec plugins are not allowed`},
		{context: "gke", want: `kubeconfig: user "gke": exec plugins are not allowed`},
		{context: "dev", server: "https://dev.example.com", credential: "token"},
		{context: "prod", want: `kubeconfig: context "prod" not found`},
	},
	"valid-no-ca.yaml": {{server: "https://kube.example.com/k8s/clusters/c-1", credential: "token"}},
	"valid-token.yaml": {{server: "https://kube.example.com:6443", credential: "token"}},
}

// fixtureSecret finds the secret values written in a fixture, so that
// errors can be checked against them whatever the fixture holds.
var fixtureSecret = regexp.MustCompile(`(?m)^\s*(token|password|id-token|client-key-data):\s*(.+?)\s*$`)

func secretsOf(t *testing.T, data []byte) [][]byte {
	t.Helper()
	var secrets [][]byte
	for _, m := range fixtureSecret.FindAllSubmatch(data, -1) {
		v := bytes.Trim(m[2], `"'`)
		if string(m[1]) == "client-key-data" {
			if pem, err := base64.StdEncoding.DecodeString(string(v)); err == nil {
				secrets = append(secrets, pem)
			}
		}
		if s, err := strconv.Unquote(string(m[2])); err == nil {
			v = []byte(s)
		}
		if len(bytes.TrimSpace(v)) >= 5 { // shorter ones would match message text by chance
			secrets = append(secrets, bytes.TrimSpace(v))
		}
	}
	return secrets
}

func TestParseKubeconfigFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	seen := map[string]bool{}
	for _, path := range files {
		name := filepath.Base(path)
		seen[name] = true
		cases, ok := fixtures[name]
		if !ok {
			t.Errorf("testdata/%s has no case in the fixtures table", name)
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		secrets := secretsOf(t, data)
		for _, tc := range cases {
			t.Run(name+"/"+tc.context, func(t *testing.T) {
				c, err := ParseKubeconfig(data, tc.context)
				if tc.want == "" {
					if err != nil {
						t.Fatalf("ParseKubeconfig: %v", err)
					}
					if c.Server != tc.server || c.credential() != tc.credential {
						t.Errorf("got server %q, credential %s; want %q, %s", c.Server, c.credential(), tc.server, tc.credential)
					}
					// What is accepted is a Connection NewConnection accepts too.
					if _, err := NewConnection(c.Server, c.CAPEM, c.TLSServerName, c.BearerToken, c.ClientCertPEM, c.ClientKeyPEM); err != nil {
						t.Errorf("NewConnection refuses what ParseKubeconfig accepted: %v", err)
					}
					return
				}
				if err == nil {
					t.Fatalf("ParseKubeconfig accepted it; want an error with %q", tc.want)
				}
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("error %v does not wrap ErrInvalid", err)
				}
				if c.Server != "" || c.BearerToken != "" || c.ClientKeyPEM != nil {
					t.Errorf("a refused kubeconfig still returned a Connection to %s", c.Server)
				}
				msg := err.Error()
				if !strings.Contains(msg, tc.want) {
					t.Errorf("error = %q\nwant it to contain %q", msg, tc.want)
				}
				for _, nw := range tc.notWant {
					if strings.Contains(msg, nw) {
						t.Errorf("error = %q; must not contain %q", msg, nw)
					}
				}
				assertNoSecret(t, "error", msg, secrets...)
			})
		}
	}
	for name := range fixtures {
		if !seen[name] {
			t.Errorf("fixtures table names testdata/%s, which does not exist", name)
		}
	}
}

// TestSecretsOfFindsFixtureSecrets keeps the secret scan honest: were it to
// find nothing, the leak checks above would pass vacuously.
func TestSecretsOfFindsFixtureSecrets(t *testing.T) {
	for file, want := range map[string]string{
		"valid-token.yaml":       "testdata-token-0123456789",
		"bad-basic-auth.yaml":    "hunter2",
		"bad-auth-provider.yaml": "abc.def.ghi",
		"valid-cert.yaml":        "-----BEGIN EC PRIVATE KEY-----",
	} {
		data, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, s := range secretsOf(t, data) {
			found = found || strings.Contains(string(s), want)
		}
		if !found {
			t.Errorf("secretsOf(%s) misses %q", file, want)
		}
	}
}

// kubeconfigYAML is a kubeconfig with one context, "ctx", whose cluster
// and user carry the given YAML lines (indented by the function).
func kubeconfigYAML(cluster, user string) []byte {
	indent := func(s string) string {
		lines := strings.Split(strings.TrimSpace(s), "\n")
		for i, l := range lines {
			lines[i] = "    " + l
		}
		return strings.Join(lines, "\n")
	}
	return []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
%s
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
users:
- name: u
  user:
%s
`, indent(cluster), indent(user)))
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestParseKubeconfigContext(t *testing.T) {
	ca := newCA(t, "context-ca")
	two := []byte(`apiVersion: v1
kind: Config
clusters:
- {name: a, cluster: {server: "https://a.example.com"}}
- {name: b, cluster: {server: "https://b.example.com:8443", certificate-authority-data: ` + b64(ca.PEM) + `}}
contexts:
- {name: ctx-a, context: {cluster: a, user: ua}}
- {name: ctx-b, context: {cluster: b, user: ub}}
current-context: ctx-b
users:
- {name: ua, user: {token: token-of-a}}
- {name: ub, user: {token: token-of-b}}
`)
	long := strings.Repeat("x", 200)
	tests := []struct {
		name, context string
		want          Connection
		wantErr       string
	}{
		{name: "current context", context: "", want: Connection{Server: "https://b.example.com:8443", CAPEM: ca.PEM, BearerToken: "token-of-b"}},
		{name: "named context", context: "ctx-a", want: Connection{Server: "https://a.example.com", BearerToken: "token-of-a"}},
		{name: "named current context", context: "ctx-b", want: Connection{Server: "https://b.example.com:8443", CAPEM: ca.PEM, BearerToken: "token-of-b"}},
		{name: "missing context", context: "ctx-c", wantErr: `kubeconfig: context "ctx-c" not found`},
		{name: "context names are not cluster names", context: "a", wantErr: `context "a" not found`},
		{name: "long name is shortened", context: long, wantErr: `context "` + long[:64] + `..." not found`},
		{name: "name with a line break is quoted", context: "ctx-a\nINJECTED", wantErr: `context "ctx-a\nINJECTED" not found`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseKubeconfig(two, tc.context)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v; want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error spans lines: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKubeconfig: %v", err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("Connection (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseKubeconfigSizeLimit(t *testing.T) {
	base, err := os.ReadFile("testdata/valid-token.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// pad grows base to n bytes with a trailing comment.
	pad := func(n int) []byte {
		out := append(bytes.Clone(base), "#"...)
		out = append(out, bytes.Repeat([]byte("p"), n-len(out)-1)...)
		return append(out, '\n')
	}
	if _, err := ParseKubeconfig(pad(MaxKubeconfigSize), ""); err != nil {
		t.Errorf("a kubeconfig of exactly MaxKubeconfigSize bytes: %v", err)
	}
	_, err = ParseKubeconfig(pad(MaxKubeconfigSize+1), "")
	if want := fmt.Sprintf("kubeconfig: larger than %d KiB", MaxKubeconfigSize>>10); err == nil || err.Error() != want {
		t.Errorf("one byte over the limit: err = %v; want %q", err, want)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("size error %v does not wrap ErrInvalid", err)
	}
}

func TestParseKubeconfigYAMLErrors(t *testing.T) {
	secret := marker(t, "yaml")
	// lines is n valid lines followed by a line that breaks the YAML.
	lines := func(n int, bad string) []byte {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			fmt.Fprintf(&b, "key%d: value\n", i)
		}
		b.WriteString(bad + "\n")
		return []byte(b.String())
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"tab indentation on line 2", []byte("x: 1\n\ttoken: " + secret + "\n"), "kubeconfig: not valid YAML (line 2)"},
		{"tab indentation on line 8", lines(7, "\ttoken: "+secret), "kubeconfig: not valid YAML (line 8)"},
		{"unclosed flow mapping on line 4", lines(3, "token: {value: "+secret+"\nnext: 1"), "kubeconfig: not valid YAML (line 4)"},
		{"unterminated quote", []byte("users:\n- name: u\n  user:\n    token: \"" + secret + "\n"), "kubeconfig: not valid YAML (line "},
		{"error without a line", []byte("token: *" + secret + "\n"), "kubeconfig: not valid YAML"},
		// The decoder quotes the value here ("cannot decode !!str `line
		// 4242...`"): its digits are not a line number and must not be
		// reported as one.
		{"quoted value looks like a line", []byte("token: !!int line 4242" + secret[len(secret)-6:] + "\n"), "kubeconfig: not valid YAML"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseKubeconfig(tc.data, "")
			if err == nil {
				t.Fatal("accepted broken YAML")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, tc.want) {
				t.Errorf("error = %q; want %q", msg, tc.want)
			}
			if strings.Contains(err.Error(), "4242") {
				t.Errorf("error quotes the input: %q", err)
			}
			assertNoSecret(t, "error", err.Error(), []byte(secret), []byte(secret[len(secret)-6:]))
		})
	}
}

// TestParseKubeconfigErrorsHoldNoSecrets plants a marker in every place a
// secret can sit, next to each problem ParseKubeconfig reports.
func TestParseKubeconfigErrorsHoldNoSecrets(t *testing.T) {
	ca := newCA(t, "leak-ca")
	token := marker(t, "token")
	password := marker(t, "password")
	certPEM, keyPEM := ca.clientCert(t, "leak-user")
	_, otherKey := ca.clientCert(t, "other-user")
	caLine := "certificate-authority-data: " + b64(ca.PEM)
	server := "server: https://kube.example.com:6443\n" + caLine
	certUser := "client-certificate-data: " + b64(certPEM) + "\nclient-key-data: "
	tests := []struct {
		name, cluster, user, want string
	}{
		{"token in a query", "server: https://kube.example.com/?access_token=" + token + "\n" + caLine, "token: x" + token, "must not have a query"},
		{"password in userinfo", "server: https://admin:" + password + "@kube.example.com\n" + caLine, "token: " + token, "must not carry a user or password"},
		{"token in a fragment", "server: https://kube.example.com/#" + token, "token: " + token, "must not have a query or fragment"},
		{"token in an invalid URL", "server: ht!tp://" + token, "token: " + token, "server: not a valid URL"},
		{"token with a line break", server, "token: \"" + token + "\\n\"", "token: must be printable ASCII"},
		{"token with a space", server, "token: \"Bearer " + token + "\"", "token: must be printable ASCII"},
		{"token and certificate", server, "token: " + token + "\n" + certUser + b64(keyPEM), "has both a token and a client certificate"},
		{"basic auth", server, "username: admin\npassword: " + password, "basic auth is not allowed"},
		{"token with basic auth", server, "token: " + token + "\nusername: admin\npassword: " + password, "basic auth is not allowed"},
		{"token with impersonation", server, "token: " + token + "\nas: system:admin", "impersonation"},
		{"exec with a token in its env", server, "exec:\n  apiVersion: client.authentication.k8s.io/v1beta1\n  command: get-token\n  env: [{name: TOKEN, value: " + token + "}]", "exec plugins are not allowed"},
		{"auth-provider with a token", server, "auth-provider:\n  name: oidc\n  config: {id-token: " + token + ", refresh-token: " + password + "}", "auth-provider plugins are not allowed"},
		{"insecure with a token", "server: https://kube.example.com\ninsecure-skip-tls-verify: true", "token: " + token, "insecure-skip-tls-verify"},
		{"proxy with a password", server + "\nproxy-url: http://u:" + password + "@proxy.example.com", "token: " + token, "proxy-url is not allowed"},
		{"mismatched key", server, certUser + b64(otherKey), "does not match"},
		{"key in the CA field", "server: https://kube.example.com\ncertificate-authority-data: " + b64(keyPEM), "token: " + token, "is not a CERTIFICATE"},
		{"key after the CA", "server: https://kube.example.com\ncertificate-authority-data: " + b64(append(bytes.Clone(ca.PEM), keyPEM...)), "token: " + token, "PEM block 2 is not a CERTIFICATE"},
		{"key in the certificate field", server, "client-certificate-data: " + b64(keyPEM) + "\nclient-key-data: " + b64(keyPEM), "client-certificate-data: PEM block 1 is not a CERTIFICATE"},
		{"key without certificate", server, "client-key-data: " + b64(keyPEM), "client-key-data without client-certificate-data"},
		{"token of the wrong type", server, "token: [" + token + "]", "not a valid kubeconfig"},
		{"key that is not base64", server, certUser + "'" + token + "!'", "not a valid kubeconfig"},
		{"token as a YAML integer tag", server, "token: !!int " + token, "not valid YAML"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseKubeconfig(kubeconfigYAML(tc.cluster, tc.user), "")
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %q; want %q", err, tc.want)
			}
			assertNoSecret(t, "error", err.Error(), []byte(token), []byte(password), keyPEM, otherKey)
		})
	}
}

// FuzzParseKubeconfig checks, for any input: no panic; a refusal wraps
// ErrInvalid and is one line of valid UTF-8 of bounded length; an
// accepted kubeconfig renders and parses back to the same Connection; and
// secrets planted into every user of a decodable kubeconfig never appear
// in the error, whatever else is wrong with it.
func FuzzParseKubeconfig(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	const (
		plantedToken    = "fuzz-planted-token-5c1d8e0f7a"
		plantedPassword = "fuzz-planted-password-93b2a4"
	)
	plantedKey := keyPEMOf(f, newKey(f))

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseKubeconfig(data, "")
		if err != nil {
			checkRefusal(t, err)
		} else {
			out, err := c.Kubeconfig("fuzz")
			if err != nil {
				t.Fatalf("accepted Connection does not render: %v", err)
			}
			back, err := ParseKubeconfig(out, "")
			if err != nil {
				t.Fatalf("rendered kubeconfig refused: %v\n%s", err, out)
			}
			if d := cmp.Diff(c, back); d != "" {
				t.Fatalf("round trip changed the Connection (-parsed +round-tripped):\n%s", d)
			}
		}

		if bytes.Contains(data, []byte("fuzz-planted")) {
			return // the input could name an entry after the marker
		}
		js, err := yaml.YAMLToJSON(data)
		if err != nil {
			return
		}
		cfg, err := clientcmd.Load(js)
		if err != nil {
			return
		}
		for _, u := range cfg.AuthInfos {
			if u != nil {
				u.Token, u.Password, u.ClientKeyData = plantedToken, plantedPassword, plantedKey
			}
		}
		planted, err := clientcmd.Write(*cfg)
		if err != nil {
			return
		}
		if _, err := ParseKubeconfig(planted, ""); err != nil {
			checkRefusal(t, err)
			assertNoSecret(t, "error", err.Error(), []byte(plantedToken), []byte(plantedPassword), plantedKey)
		}
	})
}

func checkRefusal(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("error does not wrap ErrInvalid: %v", err)
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\n\r") || !utf8.ValidString(msg) || len(msg) > 8<<10 {
		t.Fatalf("error is not one bounded line of UTF-8 (%d bytes): %q", len(msg), msg)
	}
}
