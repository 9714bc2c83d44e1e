package kube

import (
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"
)

// MaxKubeconfigSize bounds what ParseKubeconfig reads: real kubeconfigs
// are a few KiB, and YAML decoding cost grows with the input.
const MaxKubeconfigSize = 256 << 10

// yamlLine finds the line number in a YAML syntax error. It is anchored:
// other errors quote the input ("cannot decode !!str `line 9`...").
var yamlLine = regexp.MustCompile(`^yaml: line (\d+):`)

// ParseKubeconfig reads the context named context (the current-context if
// "") of a kubeconfig into a Connection. Only that context's cluster and
// user are read, checked and kept; other entries are ignored, whatever they
// hold. Decoder messages are replaced by fixed ones, since YAML and JSON
// errors can quote the input.
func ParseKubeconfig(data []byte, context string) (Connection, error) {
	if len(data) > MaxKubeconfigSize {
		return Connection{}, invalid("kubeconfig: larger than %d KiB", MaxKubeconfigSize>>10)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return Connection{}, invalid("kubeconfig: empty")
	}
	// Converting first separates YAML syntax errors (reported by line)
	// from kubeconfig schema errors.
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			return Connection{}, invalid("kubeconfig: not valid YAML (line %s)", m[1])
		}
		return Connection{}, invalid("kubeconfig: not valid YAML")
	}
	if !strings.HasPrefix(strings.TrimSpace(string(js)), "{") {
		return Connection{}, invalid("kubeconfig: not a YAML mapping")
	}
	cfg, err := clientcmd.Load(js)
	if err != nil {
		return Connection{}, invalid("kubeconfig: not a valid kubeconfig (apiVersion v1, kind Config; a field of the wrong type, or a -data field that is not base64)")
	}

	name := context
	if name == "" {
		if cfg.CurrentContext == "" {
			return Connection{}, invalid("kubeconfig: no current-context; name the context to use")
		}
		name = cfg.CurrentContext
	}
	kctx, ok := cfg.Contexts[name]
	if !ok || kctx == nil {
		return Connection{}, invalid("kubeconfig: context %s not found", quote(name))
	}
	where := "kubeconfig: context " + quote(name)
	if kctx.Cluster == "" {
		return Connection{}, invalid("%s: names no cluster", where)
	}
	if kctx.AuthInfo == "" {
		return Connection{}, invalid("%s: names no user", where)
	}
	cluster, ok := cfg.Clusters[kctx.Cluster]
	if !ok || cluster == nil {
		return Connection{}, invalid("%s: cluster %s not found", where, quote(kctx.Cluster))
	}
	user, ok := cfg.AuthInfos[kctx.AuthInfo]
	if !ok || user == nil {
		return Connection{}, invalid("%s: user %s not found", where, quote(kctx.AuthInfo))
	}

	c := Connection{
		Server:        cluster.Server,
		CAPEM:         cluster.CertificateAuthorityData,
		TLSServerName: cluster.TLSServerName,
		BearerToken:   user.Token,
		ClientCertPEM: user.ClientCertificateData,
		ClientKeyPEM:  user.ClientKeyData,
	}
	clusterRefused := refusedCluster(cluster)
	userRefused := refusedUser(user)
	var problems []string
	prefix := func(kind, n string, ps []string) {
		for _, p := range ps {
			problems = append(problems, "kubeconfig: "+kind+" "+quote(n)+": "+p)
		}
	}
	prefix("cluster", kctx.Cluster, append(clusterRefused, c.clusterProblems()...))
	// A refused mechanism is the user's credential; saying "no credential"
	// as well would only confuse.
	if len(userRefused) > 0 {
		prefix("user", kctx.AuthInfo, userRefused)
	} else {
		prefix("user", kctx.AuthInfo, c.userProblems())
	}
	if len(problems) > 0 {
		return Connection{}, invalid("%s", strings.Join(problems, "; "))
	}
	return c, nil
}

// refusedCluster lists the cluster settings a Connection cannot carry.
func refusedCluster(c *clientcmdapi.Cluster) []string {
	var p []string
	if c.CertificateAuthority != "" {
		p = append(p, "certificate-authority (a file) is not allowed: the server never reads local files; use certificate-authority-data")
	}
	if c.InsecureSkipTLSVerify {
		p = append(p, "insecure-skip-tls-verify is not allowed: give certificate-authority-data")
	}
	if c.ProxyURL != "" {
		p = append(p, "proxy-url is not allowed: connections go through Slipway's outbound policy")
	}
	return p
}

// refusedUser lists the user settings a Connection cannot carry: plugins
// would run programs on the server, files would be read from it, basic
// auth is gone from Kubernetes, and impersonation would act as an identity
// other than the one registered.
func refusedUser(u *clientcmdapi.AuthInfo) []string {
	var p []string
	if u.Exec != nil {
		p = append(p, "exec plugins are not allowed")
	}
	if u.AuthProvider != nil {
		p = append(p, "auth-provider plugins are not allowed")
	}
	if u.TokenFile != "" {
		p = append(p, "tokenFile is not allowed: the server never reads local files; use token")
	}
	if u.ClientCertificate != "" {
		p = append(p, "client-certificate (a file) is not allowed: the server never reads local files; use client-certificate-data")
	}
	if u.ClientKey != "" {
		p = append(p, "client-key (a file) is not allowed: the server never reads local files; use client-key-data")
	}
	if u.Username != "" || u.Password != "" {
		p = append(p, "username/password basic auth is not allowed")
	}
	if u.Impersonate != "" || u.ImpersonateUID != "" || len(u.ImpersonateGroups) > 0 || len(u.ImpersonateUserExtra) > 0 {
		p = append(p, "impersonation (as, as-uid, as-groups, as-user-extra) is not allowed")
	}
	return p
}

// quote quotes a name from the input, shortened so that a hostile
// kubeconfig cannot make an error message arbitrarily long.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return strconv.Quote(s)
}
