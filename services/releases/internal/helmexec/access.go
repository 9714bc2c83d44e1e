package helmexec

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"log/slog"

	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
)

// Access is how to reach one cluster's API server, as the clusters service
// hands it out (clustersv1.ClusterAccess). It holds secrets: its String,
// GoString and LogValue name the cluster and credential version only.
type Access struct {
	// ClusterID names the cluster; the executor's cache is keyed by it.
	ClusterID string
	// Server is the API server's URL; it must be https.
	Server string
	// TLSServerName is the name to verify the server's certificate
	// against, when not the URL's host.
	TLSServerName string
	// CAPEM is the PEM bundle of the CA that signs the API server's
	// certificate; the system roots when empty.
	CAPEM []byte
	// ClientCertPEM and ClientKeyPEM are a TLS client certificate, when the
	// cluster authenticates that way.
	ClientCertPEM, ClientKeyPEM []byte
	// BearerToken, when the cluster authenticates that way.
	BearerToken string
	// CredentialID and CredentialVersion name the credential this came
	// from; a new version (a rotation) replaces everything cached for the
	// cluster.
	CredentialID      string
	CredentialVersion int64
}

// AccessFromProto converts the clusters service's answer.
func AccessFromProto(p *clustersv1.ClusterAccess) Access {
	return Access{
		ClusterID:         p.GetClusterId(),
		Server:            p.GetServer(),
		TLSServerName:     p.GetTlsServerName(),
		CAPEM:             p.GetCertificateAuthorityPem(),
		ClientCertPEM:     p.GetClientCertificatePem(),
		ClientKeyPEM:      p.GetClientKeyPem(),
		BearerToken:       p.GetBearerToken(),
		CredentialID:      p.GetCredentialId(),
		CredentialVersion: p.GetCredentialVersion(),
	}
}

// String names the cluster and credential, never a secret.
func (a Access) String() string {
	return fmt.Sprintf("cluster %s (credential %s v%d)", a.ClusterID, a.CredentialID, a.CredentialVersion)
}

// GoString keeps %#v from printing the secrets.
func (a Access) GoString() string { return "helmexec.Access{" + a.String() + "}" }

// LogValue keeps slog from printing the secrets.
func (a Access) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("cluster", a.ClusterID),
		slog.String("credential", a.CredentialID),
		slog.Int64("credential_version", a.CredentialVersion),
	)
}

// fingerprint covers every field, so a cached connection is reused only
// for exactly the same access, even if a caller reused a version number.
func (a Access) fingerprint() [sha256.Size]byte {
	h := sha256.New()
	for _, f := range [][]byte{
		[]byte(a.ClusterID), []byte(a.Server), []byte(a.TLSServerName), a.CAPEM,
		a.ClientCertPEM, a.ClientKeyPEM, []byte(a.BearerToken), []byte(a.CredentialID),
	} {
		writeField(h, f)
	}
	_ = binary.Write(h, binary.BigEndian, a.CredentialVersion)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

func writeField(h hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}
