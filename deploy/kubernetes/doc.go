// Package kubernetes holds the manifests that run Aegis on Kubernetes as
// a StatefulSet of three servers with the embedded NATS cluster
// (README.md beside this file), and the test that decodes each of them
// strictly into the Kubernetes API types and checks what the cluster
// needs of them. It has no code of its own: nothing imports it.
package kubernetes
