// Package offline is `tandem inject`: it applies tandem's mutations to manifest files, with no API server. Every
// Pod and every pod template of a workload gets exactly what the webhook's pod injector would give it, and every
// Job and CronJob the defaults the webhook would set, plus the repairs only possible on what the user wrote.
//
// Each document is decoded once into a tree of maps and lists; the typed planners (webhook/podinject,
// webhook/jobdefaults) see the parts they plan as typed objects converted from that tree, and their JSON patch
// operations are applied to the tree itself (internal/patch), so fields tandem's Go types do not know survive.
package offline

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/tandem-dev/tandem/webhook/config"
	"github.com/tandem-dev/tandem/webhook/jobdefaults"
	"github.com/tandem-dev/tandem/webhook/podinject"
	"github.com/tandem-dev/tandem/webhook/workload"
)

// Result is what Inject did to a stream of documents.
type Result struct {
	// Warnings are the admission warnings the webhook would have sent, each prefixed with its object.
	Warnings []string
	// Changed counts the documents that were changed.
	Changed int
}

// mutators are the webhook's pure planners, for one configuration.
type mutators struct {
	pods *podinject.Injector
	jobs *jobdefaults.Defaulter
}

// Inject reads multi-document YAML (or JSON) from r and writes it to w with every pod injected and every Job and
// CronJob defaulted, with the configuration cfg. Documents tandem does not change are written byte for byte as
// they came; changed ones are re-encoded as YAML. When any document is refused, nothing is written and the
// error lists every refusal.
func Inject(r io.Reader, w io.Writer, cfg *config.Config) (Result, error) {
	in := mutators{pods: podinject.New(cfg), jobs: jobdefaults.New(cfg)}
	var (
		res  Result
		out  bytes.Buffer
		errs []string
	)
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	for n := 1; ; n++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("reading document %d: %w", n, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		changed, warnings, err := in.document(doc)
		if err != nil {
			errs = append(errs, fmt.Sprintf("document %d: %v", n, err))
			continue
		}
		res.Warnings = append(res.Warnings, warnings...)
		if changed != nil {
			res.Changed++
			doc = changed
		}
		writeDocument(&out, doc)
	}
	if len(errs) > 0 {
		return res, errors.New(strings.Join(errs, "\n"))
	}
	_, err := w.Write(out.Bytes())
	return res, err
}

func writeDocument(out *bytes.Buffer, doc []byte) {
	if out.Len() > 0 {
		out.WriteString("---\n")
	}
	out.Write(doc)
	if !bytes.HasSuffix(doc, []byte("\n")) {
		out.WriteByte('\n')
	}
}

// document returns the document changed, or nil when tandem leaves it alone.
func (in mutators) document(doc []byte) ([]byte, []string, error) {
	raw, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, nil, fmt.Errorf("not valid YAML: %w", err)
	}
	var tree any
	if err := utiljson.Unmarshal(raw, &tree); err != nil {
		return nil, nil, fmt.Errorf("not valid YAML: %w", err)
	}
	obj, ok := tree.(map[string]any)
	if !ok {
		return nil, nil, nil // a comment, a scalar, a list: not an object, so not ours
	}
	changed, warnings, err := in.object(obj)
	if err != nil || !changed {
		return nil, warnings, err
	}
	out, err := yaml.Marshal(obj)
	return out, warnings, err
}

// object mutates one object in place, as the webhook would mutate it and the pods made from it, and returns
// whether anything changed and the warnings the webhook would send, each naming the object.
func (in mutators) object(obj map[string]any) (bool, []string, error) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	if !strings.Contains(apiVersion, "/") && strings.HasSuffix(kind, "List") {
		return in.list(obj)
	}
	group := workload.GroupOf(apiVersion)
	path, ok := workload.TemplatePath(group, kind)
	if !ok {
		return false, nil, nil
	}
	name := kind + " " + objectName(obj)
	var (
		changed  bool
		warnings []string
	)
	// The API server stores a Job or CronJob with its defaults, and its controllers make pods from the stored
	// template: the defaults come first, then the pod injection, as in a cluster.
	if jobKind := batchKind(apiVersion, kind); jobKind != "" {
		jobChanged, jobWarnings, err := in.defaultJob(obj, jobKind)
		if err != nil {
			return false, nil, fmt.Errorf("%s: %w", name, err)
		}
		changed, warnings = jobChanged, jobWarnings
	}
	podChanged, podWarnings, err := in.injectPod(obj, path, kind)
	if err != nil {
		return false, nil, fmt.Errorf("%s: %w", name, err)
	}
	changed, warnings = changed || podChanged, append(append(podWarnings, workload.Misplaced(obj, group, kind)...), warnings...)
	named := make([]string, len(warnings))
	for i, w := range warnings {
		named[i] = name + ": " + w
	}
	return changed, named, nil
}

// list mutates the items of a v1 List, as kubectl get -o yaml writes it.
func (in mutators) list(obj map[string]any) (bool, []string, error) {
	items, _ := obj["items"].([]any)
	var (
		changed  bool
		warnings []string
	)
	for i, item := range items {
		o, ok := item.(map[string]any)
		if !ok {
			continue
		}
		c, w, err := in.object(o)
		if err != nil {
			return false, nil, fmt.Errorf("item %d: %w", i, err)
		}
		changed, warnings = changed || c, append(warnings, w...)
	}
	return changed, warnings, nil
}

// batchKind returns Job or CronJob for those kinds of the batch group, in any version, and "" otherwise.
func batchKind(apiVersion, kind string) string {
	group, _, ok := strings.Cut(apiVersion, "/")
	if !ok || group != "batch" || (kind != "Job" && kind != "CronJob") {
		return ""
	}
	return kind
}

// objectAt returns the object at path in obj; nil when the path is absent or not an object.
func objectAt(obj map[string]any, path ...string) map[string]any {
	for _, key := range path {
		obj, _ = obj[key].(map[string]any)
	}
	return obj
}

func objectName(obj map[string]any) string {
	meta := objectAt(obj, "metadata")
	if name, _ := meta["name"].(string); name != "" {
		return name
	}
	if gen, _ := meta["generateName"].(string); gen != "" {
		return gen + "*"
	}
	return "(unnamed)"
}
