// Package k8stest checks the deployment files offline: it renders every
// kustomize overlay under deploy/k8s/overlays in-process with kustomize's Go
// API, decodes every document strictly into the k8s.io/api types (an unknown
// field is an error), and checks what a schema cannot: selectors match pod
// labels, Services select existing pods and name existing ports, probes name
// existing ports, references (ConfigMaps, Secrets, claims, service accounts)
// resolve, the security settings hold, the image is the compose file's, and
// every flag passed to the binaries exists in their flag sets and validates.
// The compose file deploy/compose/docker-compose.yml is checked the same way.
//
// It is a separate Go module so that kustomize and the Kubernetes API types
// stay out of the binaries' dependency graph; it requires the main module
// through a replace directive. Run it with
//
//	(cd deploy/k8s/test && go test -mod=mod ./...)
//
// (-mod=mod: the main module's requirements change as it grows; the go
// command then updates this module's go.mod and go.sum to follow them.)
//
// All of the code is in _test.go files: the package exports nothing.
package k8stest
