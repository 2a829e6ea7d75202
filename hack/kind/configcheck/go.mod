// Checks kind configurations with kind's own types (hack/e2e-kind.sh --static). Not part of the tandem module.
module github.com/tandem-dev/tandem/hack/kind/configcheck

go 1.26.0

require (
	sigs.k8s.io/kind v0.33.0
	sigs.k8s.io/yaml v1.6.0
)

require (
	github.com/pkg/errors v0.9.1 // indirect
	go.yaml.in/yaml/v2 v2.4.2 // indirect
)
