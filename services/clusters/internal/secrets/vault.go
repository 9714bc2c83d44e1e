// Package secrets connects the clusters service to HashiCorp Vault, where
// every secret Slipway keeps lives (KV v2 under secret/orgs/<org>/...).
//
// The service logs in with its own identity (an AppRole, or its Kubernetes
// service account; a bare token only in development), renews its token while
// Vault allows and then logs in again. Every call is bounded by
// Config.Timeout and never retried by the api client, so that a Vault that is
// down, hung or sealed costs a caller at most that long: the error then wraps
// ErrUnavailable, and calls work again once Vault is back, without a
// restart.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
)

// Re-login backoff: exponential with full jitter, so that replicas
// restarted together do not log in together.
const (
	backoffBase = 500 * time.Millisecond
	backoffCap  = 30 * time.Second
)

// minInlineLogin spaces out the logins that calls attempt themselves while
// the service is logged out, so that a burst of calls against a Vault that
// refuses the login costs one attempt, not one each.
const minInlineLogin = time.Second

// Vault is the clusters service's Vault client. It is safe for concurrent
// use, also while KeepLoggedIn replaces its token.
type Vault struct {
	cfg    Config
	log    *slog.Logger
	client *vault.Client // carries the current token
	login  func(ctx context.Context) (*vault.Secret, error)
	// loginPath names the login in errors.
	loginPath string

	// sem admits one login at a time; a channel rather than a mutex so
	// that waiting for it respects the caller's deadline.
	sem chan struct{}
	// changed tells KeepLoggedIn that a call logged in, or found the token
	// dead, so that it watches the right token.
	changed chan struct{}

	mu       sync.Mutex
	session  *vault.Secret // the current login; nil while logged out
	gen      uint64        // counts logins, so that a 403 can tell a newer token exists
	lastTry  time.Time     // of the last login attempt
	loggedIn time.Time
}

// String names the Vault only: printing a *Vault must not print the
// secret id or token its config holds.
func (v *Vault) String() string { return "vault " + v.cfg.Addr }

// Open checks cfg and logs in. It fails for a config that cannot work and
// for credentials Vault refuses, so that a misconfigured service never
// starts; a Vault that is merely down or sealed is logged and left to
// KeepLoggedIn, and calls fail with ErrUnavailable until a login succeeds.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Vault, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	vc := vault.DefaultConfig()
	if vc.Error != nil {
		return nil, fmt.Errorf("vault client config: %w", vc.Error)
	}
	vc.Address = cfg.Addr
	vc.Timeout = cfg.Timeout
	// The api's default retries (2, a second or more apart) would blow the
	// callers' budget; KeepLoggedIn and the callers retry instead.
	vc.MaxRetries = 0
	// Always configured, so that an ambient VAULT_SKIP_VERIFY cannot turn
	// certificate checks off.
	if err := vc.ConfigureTLS(&vault.TLSConfig{CACert: cfg.CACert}); err != nil {
		return nil, fmt.Errorf("vault ca cert %s: %w", cfg.CACert, err)
	}
	client, err := vault.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("vault client for %s: %w", cfg.Addr, err)
	}
	// Only the configured login decides the token, not VAULT_TOKEN or
	// VAULT_NAMESPACE in the environment.
	client.ClearToken()
	client.ClearNamespace()
	login, loginPath, err := loginMethod(client, cfg)
	if err != nil {
		return nil, err
	}
	v := &Vault{
		cfg:       cfg,
		log:       log,
		client:    client,
		login:     login,
		loginPath: loginPath,
		sem:       make(chan struct{}, 1),
		changed:   make(chan struct{}, 1),
	}

	lctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	err = v.logIn(lctx)
	switch {
	case err == nil:
	case unavailable(err):
		log.WarnContext(ctx, "vault unavailable at startup, logging in later", "addr", cfg.Addr, "auth", cfg.Auth, "error", err)
	default:
		return nil, fmt.Errorf("%w (at %s)", err, cfg.Addr)
	}
	return v, nil
}

type loginFunc = func(context.Context) (*vault.Secret, error)

// loginMethod returns the login of cfg.Auth and the path it calls. Each
// login runs on a client without a token, so that a stale token can never
// spoil a login.
func loginMethod(client *vault.Client, cfg Config) (loginFunc, string, error) {
	anon, err := bare(client)
	if err != nil {
		return nil, "", fmt.Errorf("vault client: %w", err)
	}
	switch cfg.Auth {
	case AuthAppRole:
		auth, err := approle.NewAppRoleAuth(cfg.RoleID, &approle.SecretID{FromString: cfg.SecretID})
		if err != nil {
			return nil, "", fmt.Errorf("vault approle: %w", err)
		}
		return func(ctx context.Context) (*vault.Secret, error) { return auth.Login(ctx, anon) }, "auth/approle/login", nil
	case AuthKubernetes:
		path := "auth/" + strings.Trim(cfg.KubernetesMountPath, "/") + "/login"
		return func(ctx context.Context) (*vault.Secret, error) {
			// Read at every login: the kubelet rotates projected tokens.
			jwt, err := os.ReadFile(cfg.KubernetesTokenPath)
			if err != nil {
				return nil, fmt.Errorf("read service account token: %w", err)
			}
			return anon.Logical().WriteWithContext(ctx, path, map[string]any{
				"role": cfg.KubernetesRole,
				"jwt":  strings.TrimSpace(string(jwt)),
			})
		}, path, nil
	case AuthToken:
		return func(ctx context.Context) (*vault.Secret, error) {
			// A given token needs no login; its lookup tells whether it
			// works and how long it lives.
			c, err := bare(anon)
			if err != nil {
				return nil, err
			}
			c.SetToken(cfg.Token)
			self, err := c.Auth().Token().LookupSelfWithContext(ctx)
			if err != nil {
				return nil, err
			}
			ttl, _ := self.TokenTTL()
			renewable, _ := self.TokenIsRenewable()
			return &vault.Secret{Auth: &vault.SecretAuth{
				ClientToken:   cfg.Token,
				Renewable:     renewable,
				LeaseDuration: int(ttl.Seconds()),
			}}, nil
		}, "auth/token/lookup-self", nil
	}
	return nil, "", fmt.Errorf("unknown vault auth method %q", cfg.Auth)
}

// bare is a copy of c (same address, transport and timeouts) without a
// token or namespace, not even those that NewClient takes from the
// environment.
func bare(c *vault.Client) (*vault.Client, error) {
	n, err := c.Clone()
	if err != nil {
		return nil, err
	}
	n.ClearToken()
	n.ClearNamespace()
	return n, nil
}

// logIn runs one login and, when it succeeds, makes its token the one
// every call uses.
func (v *Vault) logIn(ctx context.Context) error {
	select {
	case v.sem <- struct{}{}:
	case <-ctx.Done():
		return &opError{op: "login", kind: ErrUnavailable, detail: "waiting for another login: " + ctx.Err().Error(), cause: ctx.Err()}
	}
	defer func() { <-v.sem }()
	return v.logInLocked(ctx)
}

// logInLocked is logIn for a caller holding sem.
func (v *Vault) logInLocked(ctx context.Context) error {
	v.mu.Lock()
	v.lastTry = time.Now()
	v.mu.Unlock()
	s, err := v.login(ctx)
	if err == nil && (s == nil || s.Auth == nil || s.Auth.ClientToken == "") {
		err = errors.New("login returned no token")
	}
	if err != nil {
		return callError(v.cfg.Auth+" login", v.loginPath, err)
	}
	v.mu.Lock()
	v.client.SetToken(s.Auth.ClientToken)
	v.session = s
	v.gen++
	v.loggedIn = time.Now()
	v.mu.Unlock()
	v.signal()
	v.log.InfoContext(ctx, "vault login", "addr", v.cfg.Addr, "auth", v.cfg.Auth,
		"ttl", time.Duration(s.Auth.LeaseDuration)*time.Second, "renewable", s.Auth.Renewable)
	return nil
}

func (v *Vault) signal() {
	select {
	case v.changed <- struct{}{}:
	default:
	}
}

func (v *Vault) current() (*vault.Secret, uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.session, v.gen
}

// ensureLoggedIn returns the login generation calls run under, logging in
// first when the service is logged out (at most every minInlineLogin).
func (v *Vault) ensureLoggedIn(ctx context.Context) (uint64, error) {
	if s, gen := v.current(); s != nil {
		return gen, nil
	}
	select {
	case v.sem <- struct{}{}:
	case <-ctx.Done():
		return 0, &opError{op: "login", kind: ErrUnavailable, detail: "not logged in", cause: ctx.Err()}
	}
	defer func() { <-v.sem }()
	v.mu.Lock()
	s, gen, last := v.session, v.gen, v.lastTry
	v.mu.Unlock()
	if s != nil {
		return gen, nil // logged in by whoever held sem
	}
	if time.Since(last) < minInlineLogin {
		return 0, &opError{op: "login", kind: ErrUnavailable, detail: "not logged in"}
	}
	if err := v.logInLocked(ctx); err != nil {
		return 0, &opError{op: "login", kind: ErrUnavailable, detail: "not logged in: " + describe(err), cause: err}
	}
	_, gen = v.current()
	return gen, nil
}

// relogin replaces the token of generation gen, which Vault no longer
// accepts, unless a newer one is already in place.
func (v *Vault) relogin(ctx context.Context, gen uint64) error {
	select {
	case v.sem <- struct{}{}:
	case <-ctx.Done():
		return &opError{op: "login", kind: ErrUnavailable, detail: "waiting for another login", cause: ctx.Err()}
	}
	defer func() { <-v.sem }()
	v.mu.Lock()
	if v.gen != gen {
		v.mu.Unlock()
		return nil
	}
	// Logged out until the login below succeeds: later calls then fail
	// fast instead of each finding the dead token again.
	v.session = nil
	v.mu.Unlock()
	v.signal()
	v.log.WarnContext(ctx, "vault token no longer accepted, logging in again", "addr", v.cfg.Addr, "auth", v.cfg.Auth)
	if err := v.logInLocked(ctx); err != nil {
		return &opError{op: "login", kind: ErrUnavailable, detail: "not logged in: " + describe(err), cause: err}
	}
	return nil
}

// do runs call for the operation op on path within the call timeout. A 403
// with a token Vault no longer knows (Vault restarted, the token revoked or
// expired) triggers one re-login and one retry; a 403 with a working token
// is the policy's answer and stands.
func (v *Vault) do(ctx context.Context, op, path string, call func(ctx context.Context) (*vault.Secret, error)) (*vault.Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	defer cancel()
	gen, err := v.ensureLoggedIn(ctx)
	if err != nil {
		return nil, rename(err, op, path)
	}
	s, err := call(ctx)
	if err == nil {
		return s, nil
	}
	if !denied(err) {
		return nil, callError(op, path, err)
	}
	if _, now := v.current(); now == gen {
		alive, lerr := v.tokenAlive(ctx)
		if lerr != nil {
			return nil, callError(op, path, lerr)
		}
		if alive {
			return nil, callError(op, path, err)
		}
		if err := v.relogin(ctx, gen); err != nil {
			return nil, rename(err, op, path)
		}
	}
	s, err = call(ctx)
	if err != nil {
		return nil, callError(op, path, err)
	}
	return s, nil
}

// tokenAlive reports whether Vault still accepts the current token.
func (v *Vault) tokenAlive(ctx context.Context) (bool, error) {
	_, err := v.client.Auth().Token().LookupSelfWithContext(ctx)
	switch {
	case err == nil:
		return true, nil
	case denied(err):
		return false, nil
	}
	return false, err
}

// rename moves a login error under the operation it stopped.
func rename(err error, op, path string) error {
	var oe *opError
	if errors.As(err, &oe) {
		return &opError{op: op, path: path, kind: oe.kind, detail: oe.detail, cause: oe.cause}
	}
	return callError(op, path, err)
}

// KeepLoggedIn keeps the service logged in until ctx ends: it renews the
// token with a LifetimeWatcher while Vault allows, logs in again when
// renewal ends (max TTL reached, or renewal failed) or at two thirds of a
// token's life when it is not renewable, and retries failed logins with
// exponential backoff. It returns nil when ctx ends (an oklog/run actor).
func (v *Vault) KeepLoggedIn(ctx context.Context) error {
	var (
		failures int
		stale    uint64 // the login generation to replace; 0: none
	)
	for ctx.Err() == nil {
		// Drained before reading the session, so that a login after the
		// read is not missed.
		select {
		case <-v.changed:
		default:
		}
		if s, gen := v.current(); s != nil && gen != stale {
			if v.watch(ctx, s) {
				stale = gen
			}
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
		err := v.logIn(lctx)
		cancel()
		if err == nil {
			failures, stale = 0, 0
			continue
		}
		if ctx.Err() != nil {
			break
		}
		wait := backoff(failures)
		failures++
		v.log.WarnContext(ctx, "vault login failed", "addr", v.cfg.Addr, "auth", v.cfg.Auth, "attempt", failures, "retry_in", wait.Round(time.Millisecond), "error", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-v.changed: // a call logged in meanwhile, or logged out
		}
		t.Stop()
	}
	return nil
}

// watch follows the lifetime of login s. It reports true when s needs
// replacing, false when ctx ended or another login replaced s.
func (v *Vault) watch(ctx context.Context, s *vault.Secret) bool {
	ttl := time.Duration(s.Auth.LeaseDuration) * time.Second
	if !s.Auth.Renewable {
		if ttl <= 0 {
			// Never expires (e.g. a root token); only a 403 replaces it.
			select {
			case <-ctx.Done():
			case <-v.changed:
			}
			return false
		}
		t := time.NewTimer(time.Until(v.loginTime().Add(ttl * 2 / 3)))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-v.changed:
			return false
		case <-t.C:
			return v.replaceable(ctx)
		}
	}
	w, err := v.client.NewLifetimeWatcher(&vault.LifetimeWatcherInput{Secret: s})
	if err != nil {
		v.log.ErrorContext(ctx, "vault token watcher", "error", err)
		return v.replaceable(ctx)
	}
	go w.Start()
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-v.changed:
			return false
		case r := <-w.RenewCh():
			var ttl time.Duration
			if r.Secret != nil && r.Secret.Auth != nil {
				ttl = time.Duration(r.Secret.Auth.LeaseDuration) * time.Second
			}
			v.log.DebugContext(ctx, "vault token renewed", "ttl", ttl)
		case err := <-w.DoneCh():
			if err != nil {
				v.log.WarnContext(ctx, "vault token renewal failed, logging in again", "error", callError("renew", "auth/token/renew-self", err))
			} else {
				v.log.InfoContext(ctx, "vault token renewal ended, logging in again")
			}
			return v.replaceable(ctx)
		}
	}
}

// replaceable reports whether a new login should replace the token. A
// given token cannot be replaced: the service keeps using it until Vault
// refuses it (then a call logs out) or ctx ends.
func (v *Vault) replaceable(ctx context.Context) bool {
	if v.cfg.Auth != AuthToken {
		return true
	}
	v.log.WarnContext(ctx, "vault token nears the end of its life and cannot be replaced", "auth", v.cfg.Auth)
	select {
	case <-ctx.Done():
	case <-v.changed:
	}
	return false
}

func (v *Vault) loginTime() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.loggedIn
}

// backoff is the wait before retry n (from 0): full jitter over an
// exponential bound.
func backoff(n int) time.Duration {
	bound := backoffCap
	if n < 16 {
		bound = min(backoffCap, backoffBase<<n)
	}
	return rand.N(bound) + 1
}

// Ping reports whether Vault accepts the service's token (readiness).
func (v *Vault) Ping(ctx context.Context) error {
	_, err := v.do(ctx, "ping", "auth/token/lookup-self", func(ctx context.Context) (*vault.Secret, error) {
		return v.client.Auth().Token().LookupSelfWithContext(ctx)
	})
	return err
}
