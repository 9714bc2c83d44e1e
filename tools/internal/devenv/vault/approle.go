package vault

import (
	"context"
	"embed"
	"fmt"

	"github.com/hashicorp/vault/api"
)

// policies holds one ACL policy per service, policies/<service>.hcl.
//
//go:embed policies/*.hcl
var policies embed.FS

// Services lists the Slipway services that get an AppRole.
func Services() []string {
	return []string{"clusters", "registry", "catalog", "releases", "gateway"}
}

// RoleName is the name of service's AppRole and of its policy.
func RoleName(service string) string { return "slipway-" + service }

// AppRole is the login a service uses.
type AppRole struct {
	Service  string
	RoleID   string
	SecretID string
}

// setUp enables AppRole and, for every service, writes its policy, creates
// its role and issues a secret_id. c holds the root token.
func setUp(ctx context.Context, c *api.Client) ([]AppRole, error) {
	err := c.Sys().EnableAuthWithOptionsWithContext(ctx, "approle", &api.EnableAuthOptions{
		Type:        "approle",
		Description: "Slipway services",
	})
	if err != nil {
		return nil, fmt.Errorf("enable approle: %w", err)
	}
	var roles []AppRole
	for _, svc := range Services() {
		r, err := setUpService(ctx, c, svc)
		if err != nil {
			return nil, fmt.Errorf("set up %s approle: %w", svc, err)
		}
		roles = append(roles, r)
	}
	return roles, nil
}

func setUpService(ctx context.Context, c *api.Client, svc string) (AppRole, error) {
	name := RoleName(svc)
	rules, err := policies.ReadFile("policies/" + svc + ".hcl")
	if err != nil {
		return AppRole{}, fmt.Errorf("no policy for %s: %w", svc, err)
	}
	if err := c.Sys().PutPolicyWithContext(ctx, name, string(rules)); err != nil {
		return AppRole{}, fmt.Errorf("write policy %s: %w", name, err)
	}
	role := "auth/approle/role/" + name
	_, err = c.Logical().WriteWithContext(ctx, role, map[string]any{
		"token_policies": []string{name},
		// Without Vault's default policy the token can do nothing but
		// what the service's own policy lists (no cubbyhole, no sys/).
		"token_no_default_policy": true,
		"token_ttl":               "1h",
		// Renewal (which only the clusters policy grants) stops at the
		// max TTL; the service then logs in again with its secret_id.
		"token_max_ttl": "1h",
		// A dev server's data dies with it, so a secret_id may live as long
		// as the server does; a long `make run` must not lose its login.
		"secret_id_ttl":      "0",
		"secret_id_num_uses": 0,
	})
	if err != nil {
		return AppRole{}, fmt.Errorf("write role %s: %w", name, err)
	}
	sec, err := c.Logical().ReadWithContext(ctx, role+"/role-id")
	if err != nil {
		return AppRole{}, fmt.Errorf("read role_id of %s: %w", name, err)
	}
	roleID, err := field(sec, "role_id")
	if err != nil {
		return AppRole{}, fmt.Errorf("read role_id of %s: %w", name, err)
	}
	sec, err = c.Logical().WriteWithContext(ctx, role+"/secret-id", map[string]any{
		"metadata": fmt.Sprintf(`{"service":%q,"issued_by":"devstack"}`, svc),
	})
	if err != nil {
		return AppRole{}, fmt.Errorf("issue secret_id of %s: %w", name, err)
	}
	secretID, err := field(sec, "secret_id")
	if err != nil {
		return AppRole{}, fmt.Errorf("issue secret_id of %s: %w", name, err)
	}
	return AppRole{Service: svc, RoleID: roleID, SecretID: secretID}, nil
}

// field returns the string key of a response's data.
func field(sec *api.Secret, key string) (string, error) {
	if sec == nil || sec.Data == nil {
		return "", fmt.Errorf("empty response")
	}
	v, ok := sec.Data[key].(string)
	if !ok || v == "" {
		return "", fmt.Errorf("no %s in response", key)
	}
	return v, nil
}
