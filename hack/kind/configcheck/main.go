// Command configcheck checks kind cluster configurations with kind's own Go types, without a Docker engine:
// hack/e2e-kind.sh --static runs it on hack/kind/cluster.yaml. It decodes each file strictly into kind's
// v1alpha4.Cluster (an unknown or misspelt field, or a wrong type, is an error naming it), applies kind's
// defaults, and checks what kind's own validation would refuse at create time: the kind and apiVersion, node
// roles, one control plane at least, and the pod and service subnets.
package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: configcheck FILE...")
		os.Exit(2)
	}
	failed := false
	for _, path := range os.Args[1:] {
		if err := check(path); err != nil {
			fmt.Fprintf(os.Stderr, "configcheck: %s: %v\n", path, err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

func check(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var c v1alpha4.Cluster
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return err
	}
	if c.Kind != "Cluster" || c.APIVersion != "kind.x-k8s.io/v1alpha4" {
		return fmt.Errorf("kind %q, apiVersion %q: want Cluster, kind.x-k8s.io/v1alpha4", c.Kind, c.APIVersion)
	}
	v1alpha4.SetDefaultsCluster(&c)
	var errs []error
	controlPlanes := 0
	for i, n := range c.Nodes {
		switch n.Role {
		case v1alpha4.ControlPlaneRole:
			controlPlanes++
		case v1alpha4.WorkerRole:
		default:
			errs = append(errs, fmt.Errorf("nodes[%d].role %q: want control-plane or worker", i, n.Role))
		}
	}
	if controlPlanes == 0 {
		errs = append(errs, errors.New("no control-plane node"))
	}
	for name, s := range map[string]string{"networking.podSubnet": c.Networking.PodSubnet, "networking.serviceSubnet": c.Networking.ServiceSubnet} {
		if _, err := netip.ParsePrefix(s); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %v", name, s, err))
		}
	}
	return errors.Join(errs...)
}
