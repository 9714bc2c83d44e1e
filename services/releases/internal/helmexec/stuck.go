package helmexec

import (
	"context"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Pending is a release whose newest revision Helm left pending-install,
// pending-upgrade or pending-rollback.
type Pending struct {
	Namespace, Name string
	Revision        int
	Status          string    // Helm's: "pending-upgrade"
	Since           time.Time // when the revision last changed
}

// pendingSelector picks Helm's release Secrets of pending revisions by
// their labels, so listing them decodes no release.
const pendingSelector = "owner=helm,status in (pending-install,pending-upgrade,pending-rollback)"

// ListPending lists the releases of namespaces whose newest revision is
// pending, from the labels of Helm's release Secrets (the Secrets driver's
// name, version, createdAt and modifiedAt). Whether a writer is still at
// work is the caller's to know.
func (e *Executor) ListPending(ctx context.Context, a Access, namespaces []string) ([]Pending, error) {
	c, err := e.cluster(a)
	if err != nil {
		return nil, wrapErr("list pending", "", "", err)
	}
	var out []Pending
	for _, ns := range namespaces {
		l, err := c.clientset.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: pendingSelector})
		if err != nil {
			return out, wrapErr("list pending", ns, "", err)
		}
		for _, s := range l.Items {
			lb := s.Labels
			rev, err := strconv.Atoi(lb["version"])
			if err != nil || lb["name"] == "" {
				continue // not a Secret Helm wrote
			}
			p := Pending{Namespace: ns, Name: lb["name"], Revision: rev, Status: lb["status"], Since: s.CreationTimestamp.Time}
			for _, k := range []string{"modifiedAt", "createdAt"} {
				if n, err := strconv.ParseInt(lb[k], 10, 64); err == nil {
					p.Since = time.Unix(n, 0)
					break
				}
			}
			newer, err := c.clientset.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{
				LabelSelector: "owner=helm,name=" + p.Name, ResourceVersion: "0",
			})
			if err != nil {
				return out, wrapErr("list pending", ns, p.Name, err)
			}
			if newest := newestVersion(newer.Items); newest > rev {
				continue // a later revision exists: this one is history
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// newestVersion is the highest "version" label of Helm's Secrets.
func newestVersion(items []corev1.Secret) int {
	top := 0
	for _, s := range items {
		if v, err := strconv.Atoi(s.Labels["version"]); err == nil && v > top {
			top = v
		}
	}
	return top
}

// String is for logs and audit details.
func (p Pending) String() string {
	return fmt.Sprintf("%s/%s revision %d %s since %s", p.Namespace, p.Name, p.Revision, p.Status, p.Since.UTC().Format(time.RFC3339))
}
