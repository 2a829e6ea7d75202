// Package offline is `tandem inject`: it applies tandem's mutations to manifest files, with no API server. Every
// Pod and every pod template of a workload gets exactly what the webhook's pod injector would give it, and every
// Job and CronJob the defaults the webhook would set, plus the repairs only possible on what the user wrote.
//
// Each document is decoded once into a tree of maps and lists; the typed planners (webhook/podinject,
// webhook/jobdefaults) see the parts they plan as typed objects converted from that tree, and their JSON patch
// operations are applied to the tree itself (internal/patch), so fields tandem's Go types do not know survive.
// The same operations are then carried out on the document's text (layout.go), so that what the user wrote
// around them stays as written.
package offline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	utiljson "k8s.io/apimachinery/pkg/util/json"
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

// mutators are the webhook's pure planners, for one configuration, and the log of the operations they applied to
// the document at hand.
type mutators struct {
	pods *podinject.Injector
	jobs *jobdefaults.Defaulter
	log  *[]jsonpatch.Operation
}

// Inject reads multi-document YAML, or a stream of JSON values, from r and writes it to w with every pod injected
// and every Job and CronJob defaulted, with the configuration cfg; name is where r comes from, for messages.
// What tandem does not change is written byte for byte as it came; a changed YAML document keeps its comments
// and layout around tandem's additions, and JSON stays JSON. When any document is refused, nothing is written and
// the error lists every refusal, each with its file and line.
func Inject(name string, r io.Reader, w io.Writer, cfg *config.Config) (Result, error) {
	input, err := io.ReadAll(r)
	if err != nil {
		return Result{}, fmt.Errorf("reading %s: %w", name, err)
	}
	in := mutators{pods: podinject.New(cfg), jobs: jobdefaults.New(cfg), log: new([]jsonpatch.Operation)}
	docs, rest := splitDocuments(input)
	var (
		res  Result
		out  bytes.Buffer
		errs []string
	)
	for i, d := range docs {
		changed, warnings, err := in.document(d)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s:%s", name, err))
			continue
		}
		res.Warnings = append(res.Warnings, warnings...)
		body := d.body
		if changed != nil {
			res.Changed++
			body = changed
			if !bytes.HasSuffix(d.body, []byte("\n")) {
				body = bytes.TrimSuffix(body, []byte("\n")) // the input's last line had no newline: neither has ours
			} else if !bytes.HasSuffix(body, []byte("\n")) {
				body = append(body, '\n')
			}
			if i+1 < len(docs) && !d.json && !bytes.HasSuffix(body, []byte("\n")) {
				body = append(body, '\n')
			}
		}
		out.Write(d.lead)
		out.Write(body)
	}
	out.Write(rest)
	if len(errs) > 0 {
		return res, errors.New(strings.Join(errs, "\n"))
	}
	_, err = w.Write(out.Bytes())
	return res, err
}

// yamlLine finds the line numbers in a YAML parser's message, which count from the document's start.
var yamlLine = regexp.MustCompile(`line (\d+)`)

// document returns d's body changed, or nil when tandem leaves it alone. An error starts with the line it is
// about.
func (in mutators) document(d document) ([]byte, []string, error) {
	if len(bytes.TrimSpace(d.body)) == 0 {
		return nil, nil, nil
	}
	raw, err := yaml.YAMLToJSON(d.body)
	if err != nil {
		// The parser counts lines from the document's start; the user's editor counts them from the file's.
		msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
		at := d.firstContentLine()
		msg = yamlLine.ReplaceAllStringFunc(msg, func(m string) string {
			n, _ := strconv.Atoi(strings.TrimPrefix(m, "line "))
			at = d.line + n - 1
			return "line " + strconv.Itoa(at)
		})
		return nil, nil, fmt.Errorf("%d: not valid YAML: %s", at, msg)
	}
	var tree any
	if err := utiljson.Unmarshal(raw, &tree); err != nil {
		return nil, nil, fmt.Errorf("%d: not valid YAML: %w", d.firstContentLine(), err)
	}
	obj, ok := tree.(map[string]any)
	if !ok {
		return nil, nil, nil // a comment, a scalar, a list: not an object, so not ours
	}
	*in.log = (*in.log)[:0]
	changed, warnings, err := in.object(obj, "")
	if err != nil {
		return nil, nil, fmt.Errorf("%d: %w", d.firstContentLine(), err)
	}
	if !changed {
		return nil, warnings, nil
	}
	out, note, err := rewrite(d, *in.log, obj)
	if err != nil {
		return nil, nil, fmt.Errorf("%d: %w", d.firstContentLine(), err)
	}
	if note != "" {
		warnings = append(warnings, fmt.Sprintf("%s %s: %s", obj["kind"], objectName(obj), note))
	}
	return out, warnings, nil
}

// record notes ops, applied to the object at prefix, for rewrite.
func (in mutators) record(prefix string, ops []jsonpatch.Operation) {
	for _, op := range ops {
		*in.log = append(*in.log, jsonpatch.NewOperation(op.Operation, prefix+op.Path, op.Value))
	}
}

// rewrite returns d's body with ops carried out, as the user wrote it otherwise (see layout.go), and checks the
// result against want, the decoded document with ops applied; a way that does not give want is not taken. note
// says what of the user's layout could not be kept.
func rewrite(d document, ops []jsonpatch.Operation, want map[string]any) (out []byte, note string, err error) {
	if d.json {
		root, err := parseNode(d.body)
		if err == nil {
			err = patchNode(root, ops)
		}
		if err == nil {
			var b bytes.Buffer
			if err = writeJSON(&b, root, jsonIndent(d.body), 0); err == nil && decodesTo(b.Bytes(), want) {
				return b.Bytes(), "", nil
			}
		}
		reason := fmt.Sprint(err)
		if err == nil {
			reason = "writing it in its own key order did not give the document tandem made"
		}
		out, err := json.Marshal(want)
		if unit := jsonIndent(d.body); unit != "" {
			out, err = json.MarshalIndent(want, "", unit)
		}
		return out, fmt.Sprintf("tandem wrote this document with its keys sorted: %v", reason), err
	}
	out, err = spliceYAML(d.body, ops)
	if err == nil && decodesTo(out, want) {
		return out, "", nil
	}
	reason := fmt.Sprint(err)
	if err == nil {
		reason = "an edit of the text did not give the document tandem made"
	}
	if t, err := parseYAML(d.body); err == nil {
		if err := patchNode(t.root, ops); err == nil {
			if text, err := t.style().encode(t.root); err == nil && decodesTo([]byte(text), want) {
				return []byte(text), "tandem re-encoded this document, its comments kept but not its layout: " + reason, nil
			}
		}
	}
	out, err = yaml.Marshal(want)
	return out, "tandem re-encoded this document, without its comments: " + reason, err
}

// decodesTo says whether the YAML or JSON doc decodes to want.
func decodesTo(doc []byte, want map[string]any) bool {
	raw, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return false
	}
	var got any
	return utiljson.Unmarshal(raw, &got) == nil && reflect.DeepEqual(got, any(want))
}

// object mutates one object in place, as the webhook would mutate it and the pods made from it, records the
// operations as applied to the object at prefix in the document, and returns whether anything changed and the
// warnings the webhook would send, each naming the object.
func (in mutators) object(obj map[string]any, prefix string) (bool, []string, error) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	if !strings.Contains(apiVersion, "/") && strings.HasSuffix(kind, "List") {
		return in.list(obj, prefix)
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
		jobChanged, jobWarnings, err := in.defaultJob(obj, jobKind, prefix)
		if err != nil {
			return false, nil, fmt.Errorf("%s: %w", name, err)
		}
		changed, warnings = jobChanged, jobWarnings
	}
	podChanged, podWarnings, err := in.injectPod(obj, path, kind, prefix)
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
func (in mutators) list(obj map[string]any, prefix string) (bool, []string, error) {
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
		c, w, err := in.object(o, prefix+"/items/"+strconv.Itoa(i))
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
