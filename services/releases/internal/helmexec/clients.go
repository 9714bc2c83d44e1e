package helmexec

import (
	"crypto/sha256"

	"k8s.io/client-go/kubernetes"
)

// Clientset returns the cached clientset of a's cluster (protobuf, on the
// cluster's one transport and rate limiter, through the outbound policy's
// dialer), for readers beside Helm such as the status cache's informers.
func (e *Executor) Clientset(a Access) (kubernetes.Interface, error) {
	c, err := e.cluster(a)
	if err != nil {
		return nil, err
	}
	return c.clientset, nil
}

// Fingerprint identifies a exactly (every field, secrets included, hashed):
// a different fingerprint for the same cluster means its credential
// rotated or was re-pointed.
func (a Access) Fingerprint() [sha256.Size]byte { return a.fingerprint() }
