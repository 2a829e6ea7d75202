// Package offline applies tandem's mutations to YAML manifests offline, for `tandem inject`: every Pod and
// every pod template of a workload gets exactly the JSON patch the webhook would send for it, and every Job and
// CronJob the defaults the webhook would set (plus the repairs only possible on what the user wrote).
package offline

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
	gomodulesjsonpatch "gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/tandem-dev/tandem/webhook/config"
	"github.com/tandem-dev/tandem/webhook/jobdefaults"
	"github.com/tandem-dev/tandem/webhook/podinject"
)

// mutators are the webhook's pure mutators, for one configuration.
type mutators struct {
	pods *podinject.Injector
	jobs *jobdefaults.Defaulter
}

// Result is what Inject did to a stream of documents.
type Result struct {
	// Warnings are the admission warnings the webhook would have sent, each prefixed with its object.
	Warnings []string
	// Changed counts the documents that were changed.
	Changed int
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
		changed, warnings, err := document(doc, in)
		if err != nil {
			errs = append(errs, fmt.Sprintf("document %d: %v", n, err))
			continue
		}
		res.Warnings = append(res.Warnings, warnings...)
		if changed != nil {
			res.Changed++
			doc = changed
		}
		if out.Len() > 0 {
			out.WriteString("---\n")
		}
		out.Write(doc)
		if !bytes.HasSuffix(doc, []byte("\n")) {
			out.WriteByte('\n')
		}
	}
	if len(errs) > 0 {
		return res, errors.New(strings.Join(errs, "\n"))
	}
	_, err := w.Write(out.Bytes())
	return res, err
}

// document returns the document changed, or nil when tandem leaves it alone.
func document(doc []byte, in mutators) ([]byte, []string, error) {
	raw, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, nil, fmt.Errorf("not valid YAML: %w", err)
	}
	if !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		return nil, nil, nil // a comment, a scalar, a list: not an object, so not ours
	}
	ops, warnings, err := objectPatch(raw, "", in)
	if err != nil || len(ops) == 0 {
		return nil, warnings, err
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return nil, nil, err
	}
	decoded, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		return nil, nil, err
	}
	patched, err := decoded.Apply(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("applying the patch: %w", err)
	}
	out, err := yaml.JSONToYAML(patched)
	return out, warnings, err
}

// object is the part of any object needed to find its pods.
type object struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
}

// templatePaths gives, for each kind that holds pods, where its pod template is. The key is group/kind, any
// version: an old apps/v1beta2 Deployment has its template where apps/v1 has it.
var templatePaths = map[string][]string{
	"/Pod":                   nil,
	"/PodTemplate":           {"template"},
	"/ReplicationController": {"spec", "template"},
	"apps/Deployment":        {"spec", "template"},
	"apps/StatefulSet":       {"spec", "template"},
	"apps/DaemonSet":         {"spec", "template"},
	"apps/ReplicaSet":        {"spec", "template"},
	"batch/Job":              {"spec", "template"},
	"batch/CronJob":          {"spec", "jobTemplate", "spec", "template"},
}

// objectPatch returns the operations the webhook would make on the pods in one object at prefix, with the
// warnings it would send, each naming the object.
func objectPatch(raw []byte, prefix string, in mutators) ([]gomodulesjsonpatch.Operation, []string, error) {
	var obj object
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, nil, fmt.Errorf("not a Kubernetes object: %w", err)
	}
	name := fmt.Sprintf("%s %s", obj.Kind, objectName(&obj.Metadata))
	if !strings.Contains(obj.APIVersion, "/") && strings.HasSuffix(obj.Kind, "List") {
		return listPatch(raw, prefix, in)
	}
	path, ok := TemplatePath(obj.APIVersion, obj.Kind)
	if !ok {
		return nil, nil, nil
	}
	var pod corev1.PodTemplateSpec
	if err := json.Unmarshal(dig(raw, path), &pod); err != nil {
		return nil, nil, fmt.Errorf("%s: decoding its pod: %w", name, err)
	}
	plan, err := in.pods.Plan(&pod.ObjectMeta, &pod.Spec)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	ops, warnings := plan.Patch(prefix+pointer(path), &pod.ObjectMeta, &pod.Spec), plan.Warnings
	if group, _, _ := strings.Cut(obj.APIVersion, "/"); group == "batch" {
		// The pod injector's operations touch the pod template only, the defaulter's the Job's own fields and
		// the template's restartPolicy, so the two apply one after the other.
		jobOps, jobWarnings, err := in.jobs.PatchDocument(raw, prefix)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		ops, warnings = append(ops, jobOps...), append(warnings, jobWarnings...)
	}
	named := make([]string, len(warnings))
	for i, w := range warnings {
		named[i] = name + ": " + w
	}
	return ops, named, nil
}

// TemplatePath returns where an object of this apiVersion and kind holds its pod (nil for a Pod itself), and
// whether it holds one at all.
func TemplatePath(apiVersion, kind string) ([]string, bool) {
	group, _, found := strings.Cut(apiVersion, "/")
	if !found {
		group = ""
	}
	path, ok := templatePaths[group+"/"+kind]
	return path, ok
}

// listPatch handles a v1 List, as kubectl get -o yaml writes it.
func listPatch(raw []byte, prefix string, in mutators) ([]gomodulesjsonpatch.Operation, []string, error) {
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, nil, fmt.Errorf("decoding a List: %w", err)
	}
	var (
		ops      []gomodulesjsonpatch.Operation
		warnings []string
	)
	for i, item := range list.Items {
		o, w, err := objectPatch(item, fmt.Sprintf("%s/items/%d", prefix, i), in)
		if err != nil {
			return nil, nil, fmt.Errorf("item %d: %w", i, err)
		}
		ops, warnings = append(ops, o...), append(warnings, w...)
	}
	return ops, warnings, nil
}

// dig returns the JSON at path in raw, or nil.
func dig(raw []byte, path []string) []byte {
	for _, key := range path {
		var fields map[string]json.RawMessage
		if json.Unmarshal(raw, &fields) != nil {
			return []byte("{}")
		}
		raw = fields[key]
	}
	if raw == nil {
		return []byte("{}")
	}
	return raw
}

func pointer(path []string) string {
	var b strings.Builder
	for _, p := range path {
		b.WriteString("/" + podinject.EscapePointer(p))
	}
	return b.String()
}

func objectName(m *metav1.ObjectMeta) string {
	switch {
	case m.Name != "":
		return m.Name
	case m.GenerateName != "":
		return m.GenerateName + "*"
	default:
		return "(unnamed)"
	}
}
