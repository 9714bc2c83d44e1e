package secrets

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"
)

// The ways the service can log in to Vault (Config.Auth).
const (
	AuthAppRole    = "approle"
	AuthKubernetes = "kubernetes"
	AuthToken      = "token"
)

// Defaults of the Config fields left empty.
const (
	DefaultMount               = "secret"
	DefaultKubernetesTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	DefaultKubernetesMountPath = "kubernetes"
	// DefaultTimeout leaves room under the 2 s within which a caller must
	// learn that Vault is unavailable.
	DefaultTimeout = 1500 * time.Millisecond
)

// Config is how the service reaches Vault and logs in to it.
type Config struct {
	// Addr is Vault's URL, e.g. https://vault.internal:8200.
	Addr string
	// Mount is the KV v2 mount the paths are relative to.
	Mount string
	// Auth is the login method: approle (default), kubernetes or token.
	Auth string

	RoleID   string // approle
	SecretID string // approle

	KubernetesRole      string // kubernetes: the Vault role to log in as
	KubernetesTokenPath string // kubernetes: the service account token, read at every login
	KubernetesMountPath string // kubernetes: where the auth method is mounted

	Token string // token

	// CACert is a PEM file of the CA that signed Vault's certificate
	// (empty: the system roots).
	CACert string
	// Timeout bounds every Vault call, its re-login and retry included.
	Timeout time.Duration
}

// RegisterFlags adds the --vault-* flags to fs, defaulting to c's values or,
// where c leaves a field empty, to the package defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := c.withDefaults()
	fs.StringVar(&c.Addr, "vault-addr", d.Addr, "Vault `URL` holding the organizations' secrets")
	fs.StringVar(&c.Auth, "vault-auth", d.Auth, "how to log in to Vault: `method` approle, kubernetes or token")
	fs.StringVar(&c.RoleID, "vault-role-id", d.RoleID, "AppRole role `id` of this service (--vault-auth=approle)")
	fs.StringVar(&c.SecretID, "vault-secret-id", d.SecretID, "AppRole secret `id` of this service (--vault-auth=approle); prefer the environment variable, which other local users cannot read")
	fs.StringVar(&c.KubernetesRole, "vault-kubernetes-role", d.KubernetesRole, "Vault `role` to log in as with the pod's service account token (--vault-auth=kubernetes)")
	fs.StringVar(&c.KubernetesTokenPath, "vault-kubernetes-token-path", d.KubernetesTokenPath, "service account token `file`, read again at every login (--vault-auth=kubernetes)")
	fs.StringVar(&c.KubernetesMountPath, "vault-kubernetes-mount", d.KubernetesMountPath, "`path` the Kubernetes auth method is mounted at in Vault (--vault-auth=kubernetes)")
	fs.StringVar(&c.Token, "vault-token", d.Token, "Vault `token` to use as it is (--vault-auth=token; for development); prefer the environment variable")
	fs.StringVar(&c.CACert, "vault-ca-cert", d.CACert, "PEM `file` of the CA that signed Vault's certificate (empty: the system roots)")
	fs.StringVar(&c.Mount, "vault-mount", d.Mount, "`path` of the KV v2 secrets engine the secrets are kept in")
	fs.DurationVar(&c.Timeout, "vault-timeout", d.Timeout, "bound on every Vault call (`duration`); keep it under the callers' 2s budget")
}

// LogValue keeps the secret id and the token out of any log line that
// includes a Config.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("addr", c.Addr),
		slog.String("auth", c.Auth),
		slog.String("mount", c.Mount),
		slog.String("role_id", c.RoleID),
		slog.String("kubernetes_role", c.KubernetesRole),
		slog.Duration("timeout", c.Timeout),
	)
}

// String is LogValue's counterpart for fmt, so that %v cannot leak either.
func (c Config) String() string { return c.LogValue().String() }

func (c Config) withDefaults() Config {
	if c.Mount == "" {
		c.Mount = DefaultMount
	}
	if c.Auth == "" {
		c.Auth = AuthAppRole
	}
	if c.KubernetesTokenPath == "" {
		c.KubernetesTokenPath = DefaultKubernetesTokenPath
	}
	if c.KubernetesMountPath == "" {
		c.KubernetesMountPath = DefaultKubernetesMountPath
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// validate names what is missing, never the value of a secret field.
func (c Config) validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("vault address is required"))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("vault timeout %s is negative", c.Timeout))
	}
	switch c.Auth {
	case AuthAppRole:
		if c.RoleID == "" || c.SecretID == "" {
			errs = append(errs, errors.New("vault approle auth needs a role id and a secret id"))
		}
	case AuthKubernetes:
		if c.KubernetesRole == "" {
			errs = append(errs, errors.New("vault kubernetes auth needs a role"))
		}
	case AuthToken:
		if c.Token == "" {
			errs = append(errs, errors.New("vault token auth needs a token"))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown vault auth method %q (want approle, kubernetes or token)", c.Auth))
	}
	return errors.Join(errs...)
}
