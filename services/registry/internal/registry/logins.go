package registry

import (
	"context"

	"github.com/slipwayhq/slipway/pkg/clusteraccess"
)

// AccessLogins reads registry logins from the clusters service, cached by
// pkg/clusteraccess and dropped as soon as a credential changes.
type AccessLogins struct{ Client *clusteraccess.Client }

var _ Logins = AccessLogins{}

// RegistryLogin implements Logins.
func (a AccessLogins) RegistryLogin(ctx context.Context, org, host string) (Login, error) {
	resp, err := a.Client.RegistryAuth(ctx, org, host)
	if err != nil {
		return Login{}, err
	}
	return Login{Found: resp.GetFound(), Username: resp.GetUsername(), Password: resp.GetPassword()}, nil
}
