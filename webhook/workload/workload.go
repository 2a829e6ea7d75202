// Package workload checks the pod templates of workloads (Deployments, StatefulSets, DaemonSets, ReplicaSets,
// ReplicationControllers, Jobs and CronJobs) where the user applies them: what the pod injector would refuse
// their pods for, its warnings, and tandem annotations written on the workload's own metadata, where tandem
// does not read them. The webhook's validating endpoint and the offline `tandem inject` both call it, so a
// template's mistakes surface at `kubectl apply` instead of as pods that never appear.
package workload

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tandem-dev/tandem/internal/contract"
	"github.com/tandem-dev/tandem/webhook/annotations"
	"github.com/tandem-dev/tandem/webhook/podinject"
)

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

// TemplatePath returns where an object of this group and kind holds its pod (nil for a Pod itself), and
// whether it holds one at all.
func TemplatePath(group, kind string) ([]string, bool) {
	path, ok := templatePaths[group+"/"+kind]
	return path, ok
}

// GroupOf is the group of an apiVersion: "" for the core group's "v1".
func GroupOf(apiVersion string) string {
	group, _, found := strings.Cut(apiVersion, "/")
	if !found {
		return ""
	}
	return group
}

// Result is what tandem says about a workload's pod template.
type Result struct {
	// Warnings are the pod injector's warnings for the template's pods and the misplaced annotations.
	Warnings []string
	// Refusal is what the pod injector would refuse the template's pods for; nil when it admits them.
	Refusal *podinject.Refusal
}

// Check examines obj, a workload of this group and kind decoded into maps and lists, with in's configuration.
// An error means the template could not be decoded at all.
func Check(in *podinject.Injector, obj map[string]any, group, kind string) (Result, error) {
	path, ok := TemplatePath(group, kind)
	if !ok || len(path) == 0 {
		return Result{}, nil
	}
	var pod corev1.PodTemplateSpec
	if tmpl := objectAt(obj, path...); tmpl != nil {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(tmpl, &pod); err != nil {
			return Result{}, fmt.Errorf("decoding its pod template (%s): %w", strings.Join(path, "."), err)
		}
	}
	res := Result{Warnings: Misplaced(obj, group, kind)}
	plan, err := PlanTemplate(in, obj, kind, &pod)
	if err != nil {
		refusal, ok := err.(*podinject.Refusal)
		if !ok {
			return Result{}, err
		}
		res.Refusal = refusal
		return res, nil
	}
	res.Warnings = append(plan.Warnings, res.Warnings...)
	return res, nil
}

// PlanTemplate plans the pods of obj's pod template (pod, decoded from it) as the pod injector would, with the
// check only a workload allows (Members): the plan, its warning among the plan's, or a Refusal with its problem
// beside the injector's.
func PlanTemplate(in *podinject.Injector, obj map[string]any, kind string, pod *corev1.PodTemplateSpec) (*podinject.Plan, error) {
	plan, err := in.Plan(&pod.ObjectMeta, &pod.Spec)
	refusal, refused := err.(*podinject.Refusal)
	if err != nil && !refused {
		return nil, err
	}
	problem, warning := Members(obj, kind, pod.Annotations, err == nil && plan.Outcome == podinject.Injected)
	switch {
	case problem != "" && refused:
		return nil, &podinject.Refusal{Problems: append(slices.Clip(refusal.Problems), problem)}
	case problem != "":
		return nil, &podinject.Refusal{Problems: []string{problem}}
	case err != nil:
		return nil, err
	}
	if warning != "" {
		plan.Warnings = append(plan.Warnings, warning)
	}
	return plan, nil
}

// Members checks tandem.dev/backup-members on the pod template of obj, a workload of this kind whose
// template carries the annotations ann; injected says the template's pods get the sidecar. It returns a
// problem, for which the workload is refused, when the annotation asks for a StatefulSet's member 0 of a kind
// whose pods have no index, and a warning when several pods will each back up the same database.
func Members(obj map[string]any, kind string, ann map[string]string, injected bool) (problem, warning string) {
	members := ann[annotations.BackupMembers]
	if members == contract.MembersFirst && slices.Contains(unindexed, kind) {
		return fmt.Sprintf("annotation %s: %q backs up only a StatefulSet's member 0, and a %s's pods have no index: "+
			"remove it (every pod then backs up), or run the database as a StatefulSet", annotations.BackupMembers, members, kind), ""
	}
	if !injected || members == contract.MembersFirst {
		return "", ""
	}
	return "", replicasWarning(obj, kind)
}

// unindexed are the kinds whose pods carry no StatefulSet index.
var unindexed = []string{"Deployment", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob"}

// replicasWarning says what happens when a workload with several pods opts in: each pod's sidecar backs up.
func replicasWarning(obj map[string]any, kind string) string {
	var pods string
	switch kind {
	case "DaemonSet":
		pods = "a DaemonSet runs a pod on every node, and each"
	case "Deployment", "StatefulSet", "ReplicaSet", "ReplicationController":
		replicas, ok := objectAt(obj, "spec")["replicas"].(int64)
		if !ok || replicas <= 1 { // absent: the API server's default, 1
			return ""
		}
		pods = fmt.Sprintf("its %d replicas each get a backup sidecar, and each", replicas)
	default:
		return ""
	}
	advice := "if the replicas are one database (a primary and its standbys), set " + annotations.BackupMembers + ": " +
		contract.MembersFirst + " on the template so that only member 0 backs up"
	if kind != "StatefulSet" {
		advice = "a " + kind + "'s pods have no stable identity: for a primary and its standbys, run them as a StatefulSet and set " +
			annotations.BackupMembers + ": " + contract.MembersFirst
	}
	return fmt.Sprintf("this %s opts in to backups and %s sidecar backs up the database beside it, every interval, to the same location "+
		"(each backup's name says which pod took it; restore --from latest takes the newest of any pod); %s", kind, pods, advice)
}

// Misplaced warns of tandem's pod annotations on a workload's own metadata (or a CronJob's job template's)
// that its pod template lacks: tandem reads them from the pods only, so the user who wrote
// tandem.dev/backup there believes backups are on and has none. Unknown tandem.dev/ keys there are warned of
// too, as on pods; a Job's or CronJob's own keys (tandem.dev/defaults) are in their place.
func Misplaced(obj map[string]any, group, kind string) []string {
	path, ok := TemplatePath(group, kind)
	if !ok || len(path) == 0 {
		return nil
	}
	template := stringMap(objectAt(obj, append(slices.Clone(path), "metadata")...)["annotations"])
	templateAt := strings.Join(path, ".") + ".metadata.annotations"
	places := [][]string{{"metadata"}}
	if kind == "CronJob" {
		places = append(places, []string{"spec", "jobTemplate", "metadata"})
	}
	var warnings []string
	for _, place := range places {
		ann := stringMap(objectAt(obj, place...)["annotations"])
		for _, key := range slices.Sorted(maps.Keys(ann)) {
			if !strings.HasPrefix(key, annotations.Prefix) || ownKey(group, key) {
				continue
			}
			if !annotations.Known(key) {
				warnings = append(warnings, fmt.Sprintf("unknown annotation %s on %s is ignored", key, strings.Join(place, ".")))
				continue
			}
			if _, ok := template[key]; ok {
				continue // the template has it too, where it counts
			}
			what := "tandem does not read it"
			if key == annotations.Backup {
				what = "tandem does not read it, so the pods get no backup sidecar"
			}
			warnings = append(warnings, fmt.Sprintf("annotation %s is on the %s's %s, where %s: move it to %s",
				key, kind, strings.Join(place, "."), what, templateAt))
		}
	}
	return warnings
}

// ownKey reports whether key belongs on the workload itself: tandem's Job and CronJob keys.
func ownKey(group, key string) bool {
	return group == "batch" && (key == annotations.Defaults || key == annotations.Defaulted)
}

// TandemAnnotations returns every tandem.dev/ annotation of the workload and of its pod template, keyed by
// where each is: an UPDATE that leaves them as they were is never refused.
func TandemAnnotations(obj map[string]any, group, kind string) map[string]string {
	path, _ := TemplatePath(group, kind)
	out := map[string]string{}
	for _, place := range [][]string{{"metadata"}, {"spec", "jobTemplate", "metadata"}, append(slices.Clone(path), "metadata")} {
		for k, v := range stringMap(objectAt(obj, place...)["annotations"]) {
			if strings.HasPrefix(k, annotations.Prefix) {
				out[strings.Join(place, ".")+"/"+k] = v
			}
		}
	}
	return out
}

// objectAt returns the object at path in obj; nil when the path is absent or not an object.
func objectAt(obj map[string]any, path ...string) map[string]any {
	for _, key := range path {
		obj, _ = obj[key].(map[string]any)
	}
	return obj
}

func stringMap(v any) map[string]string {
	m, _ := v.(map[string]any)
	out := make(map[string]string, len(m))
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}
