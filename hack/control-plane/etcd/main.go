// Command etcd is the etcd server, built from the pinned
// go.etcd.io/etcd/server/v3 module for envtest by hack/control-plane.sh.
//
// etcd's own modules carry replace directives, so the binary cannot be
// `go install`ed from the module proxy; this wrapper module pins the same
// set of etcd modules instead. Keep it identical to etcd's server/main.go.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
