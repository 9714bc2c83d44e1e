//go:build tools

// Package kubernetes pins the Kubernetes control-plane commands that
// devstack builds (with GOWORK=off, from this folder) into its cache.
// It lives outside go.work: its replace lines would otherwise apply to
// every Slipway module.
package kubernetes

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
