//go:build tools

// Package tools pins the Kubernetes commands the rig builds, and the
// openapi-gen that generates the file the kubernetes module zip lacks, so that
// `go mod tidy` keeps every module they need in go.mod and go.sum.
package tools

import (
	_ "k8s.io/kube-openapi/cmd/openapi-gen"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"

	// Imported by pkg/generated/openapi/zz_generated.openapi.go, which the
	// build generates because the module zip lacks it; nothing else in the
	// build list imports it, so without this go.sum would miss its hash.
	_ "k8s.io/kube-proxy/config/v1alpha1"
)
