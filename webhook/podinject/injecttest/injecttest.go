// Package injecttest holds the Pod that tandem's benchmarks and its load test (hack/bench) admit: a PostgreSQL
// StatefulSet replica of about 5 KB, as kube-apiserver sends it to a webhook, with the API server's defaults and
// the ServiceAccount admission plugin's token volume already applied.
package injecttest

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"strings"
)

//go:embed postgres-pod.json
var postgresPod []byte

// PostgresPod returns the Pod as compact JSON, as the API server sends it. It opts in to the postgres profile
// with a location, an interval, a database and a database secret, and carries annotations of other tools too.
func PostgresPod() []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, postgresPod); err != nil {
		panic("injecttest: postgres-pod.json: " + err.Error())
	}
	return b.Bytes()
}

// UnannotatedPod returns PostgresPod without its tandem.dev/ annotations: a Pod that did not opt in. Its other
// annotations stay, so it is the same size but for those.
func UnannotatedPod() []byte {
	var pod map[string]any
	if err := json.Unmarshal(postgresPod, &pod); err != nil {
		panic("injecttest: postgres-pod.json: " + err.Error())
	}
	ann := pod["metadata"].(map[string]any)["annotations"].(map[string]any)
	for k := range ann {
		if strings.HasPrefix(k, "tandem.dev/") {
			delete(ann, k)
		}
	}
	b, err := json.Marshal(pod)
	if err != nil {
		panic(err)
	}
	return b
}
