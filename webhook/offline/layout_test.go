package offline

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tandem-dev/tandem/webhook/config"
)

// A pod written the way many repositories write them: four-space indentation, sequences at their key's column,
// comments and blank lines everywhere, a commented-out container after the last one, no final newline.
const commentedPod = `# The orders database.
apiVersion: v1
kind: Pod
metadata:
    name: orders-db   # one replica is enough

    annotations:
        # backups on
        "tandem.dev/backup": 'postgres'
        tandem.dev/backup-location: s3://orders/prod
spec:
    containers:
    - name: postgres
      image: postgres:17   # pinned
      args: ["-c", "max_connections=200"]
      env:
      - name: NOTE
        value: >
            folded over
            two lines
    # - name: exporter
    #   image: prometheuscommunity/postgres-exporter
# end of the pod`

func TestInjectKeepsWhatTheUserWrote(t *testing.T) {
	cfg := config.Default()
	cases := []struct {
		name      string
		input     string
		additions bool     // every line of the input is in the output, in order: a diff shows only additions
		want      []string // in the output
		warn      string   // in the warnings; "" for none
	}{
		{name: "comments, blank lines, quoting, four spaces and compact sequences", input: commentedPod, additions: true, want: []string{
			"\n        tandem.dev/injected: postgres\n",
			"\n    - name: postgres\n", "\n    initContainers:\n    - name: tandem-backup\n      image: ghcr.io/",
			"\n        valueFrom:\n            fieldRef:\n                apiVersion: v1\n",
			"\n      command:\n      - tandem\n      - backup\n",
			"            two lines\n    initContainers:\n", // a new key goes before the comments that end its mapping
			"\n    volumes:\n    - name: backup-data\n      emptyDir:\n          sizeLimit: 16Gi\n",
		}},
		{name: "separators and untouched documents as they came",
			input: "---\n# only a comment\n--- # the service\napiVersion: v1\nkind: Service\nmetadata: {name: db}\n---\n" +
				"apiVersion: v1\nkind: Pod\nmetadata:\n  name: db\n  annotations: {tandem.dev/backup: postgres, tandem.dev/backup-location: \"s3://b/p\"}\nspec:\n  containers:\n  - {name: postgres, image: postgres:17}\n",
			want: []string{"annotations: {tandem.dev/backup: postgres, tandem.dev/backup-location: \"s3://b/p\", tandem.dev/injected: postgres}\n"}},
		{name: "a value the API server defaulted, and its comment", additions: false,
			input: "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: export\nspec:\n  backoffLimit: 6   # the default\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: export\n          image: busybox\n",
			want:  []string{"\n  backoffLimit: 3   # the default\n", "\n  ttlSecondsAfterFinished: "}},
		{name: "Windows line endings", additions: true,
			input: "apiVersion: v1\r\nkind: Pod\r\nmetadata:\r\n  name: db\r\n  annotations:\r\n    tandem.dev/backup: postgres\r\n    tandem.dev/backup-location: s3://b/p\r\nspec:\r\n  containers:\r\n  - name: postgres\r\n    image: postgres:17\r\n",
			want:  []string{"\r\n    tandem.dev/injected: postgres\r\n", "\r\n  initContainers:\r\n  - name: tandem-backup\r\n"}},
		{name: "anchors: re-encoded, and said so",
			input: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: db # kept?\n  annotations: &a\n    tandem.dev/backup: postgres\n    tandem.dev/backup-location: s3://b/p\n  labels: *a\nspec:\n  containers:\n  - name: postgres\n    image: postgres:17\n",
			want:  []string{"tandem.dev/injected: postgres"}, warn: "Pod db: tandem re-encoded this document, without its comments: the document uses YAML anchors and aliases"},
		{name: "a JSON stream, one value per line (jq -c)",
			input: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"db"}}` + "\n" +
				`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"db","annotations":{"tandem.dev/backup":"postgres","tandem.dev/backup-location":"s3://b/p"}},"spec":{"containers":[{"name":"postgres","image":"postgres:17"}]}}`,
			want: []string{`{"apiVersion":"v1","kind":"Service","metadata":{"name":"db"}}` + "\n" +
				`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"db","annotations":{"tandem.dev/backup":"postgres","tandem.dev/backup-location":"s3://b/p","tandem.dev/injected":"postgres"}},"spec":{"containers":[{"name":"postgres","image":"postgres:17"}],"initContainers":[{"name":"tandem-backup",`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			res, err := Inject("pod.yaml", strings.NewReader(tc.input), &out, cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := out.String()
			if res.Changed == 0 {
				t.Fatalf("nothing changed:\n%s", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("the output lacks %q:\n%s", w, got)
				}
			}
			if tc.additions {
				if missing := notKept(tc.input, got); missing != "" {
					t.Errorf("the input's line %q is not in the output, or out of order:\n%s", missing, got)
				}
			}
			if warnings := strings.Join(res.Warnings, "\n"); tc.warn == "" && strings.Contains(warnings, "re-encoded") ||
				tc.warn != "" && !strings.Contains(warnings, tc.warn) {
				t.Errorf("warnings %q, want one containing %q", warnings, tc.warn)
			}
			if strings.HasSuffix(tc.input, "\n") != strings.HasSuffix(got, "\n") {
				t.Errorf("the input ends with a newline: %v; the output: %v", strings.HasSuffix(tc.input, "\n"), strings.HasSuffix(got, "\n"))
			}
			var again bytes.Buffer
			if res, err := Inject("pod.yaml", strings.NewReader(got), &again, cfg); err != nil || res.Changed != 0 || again.String() != got {
				t.Errorf("the output, injected again, changed (%v, %d changed):\n%s", err, res.Changed, again.String())
			}
		})
	}
}

// notKept returns the first line of input that is not in output in input's order, or "" when they all are.
func notKept(input, output string) string {
	out := strings.SplitAfter(output, "\n")
	j := 0
	for _, line := range strings.SplitAfter(input, "\n") {
		for j < len(out) && strings.TrimSuffix(out[j], "\n") != strings.TrimSuffix(line, "\n") {
			j++
		}
		if j == len(out) {
			return line
		}
		j++
	}
	return ""
}

func TestInjectNamesTheFileAndLine(t *testing.T) {
	cfg := config.Default()
	for _, tc := range []struct{ name, input, want string }{
		{name: "a YAML error in the second document",
			input: "apiVersion: v1\nkind: Service\nmetadata: {name: db}\n---\n# a pod\napiVersion: v1\nkind: Pod\nmetadata:\n  name: db\n   labels: {}\n",
			want:  "db.yaml:10: not valid YAML: yaml: line 10: "},
		{name: "a refused object, at its first line",
			input: "apiVersion: v1\nkind: Service\nmetadata: {name: db}\n---\n\n# a pod\napiVersion: v1\nkind: Pod\nmetadata:\n  name: db\n  annotations: {tandem.dev/backup: postgres, tandem.dev/backup-interval: daily}\n",
			want:  "db.yaml:7: Pod db: tandem cannot inject the backup sidecar: "},
		{name: "broken JSON is read as YAML, whose parser names the line",
			input: "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Pod\"\n  \"metadata\": {}\n}\n",
			want:  "db.yaml:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := Inject("db.yaml", strings.NewReader(tc.input), &out, cfg)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %v, want one starting %q", err, tc.want)
			}
			if out.Len() > 0 {
				t.Errorf("wrote %q though it failed", out.String())
			}
		})
	}
}

func TestAnUntouchedFileComesBackByteForByte(t *testing.T) {
	for _, input := range []string{
		"# no newline at the end\napiVersion: v1\nkind: Service\nmetadata: {name: db}",
		"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c   # a comment\n\n\n--- # two\n# nothing\n",
		"{\n    \"kind\": \"Service\",\n    \"apiVersion\": \"v1\"\n}\n\n",
		"",
	} {
		var out bytes.Buffer
		res, err := Inject("db.yaml", strings.NewReader(input), &out, config.Default())
		if err != nil || res.Changed != 0 || out.String() != input {
			t.Errorf("%q came back as %q (%v, %d changed)", input, out.String(), err, res.Changed)
		}
	}
}

// FuzzInject feeds manifests tandem changes, and mangled ones, to tandem inject: it never panics, and what it
// writes, injected again, is left as it is.
func FuzzInject(f *testing.F) {
	f.Add(commentedPod)
	f.Add("apiVersion: v1\nkind: Pod\nmetadata:\n  annotations: {tandem.dev/backup: postgres, tandem.dev/backup-location: \"s3://b/p\"}\nspec:\n  containers: [{name: db, image: postgres}]\n  volumes: []\n")
	f.Add("apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  backoffLimit: 6 # x\n  template:\n    spec:\n      ttlSecondsAfterFinished: 5\n      containers:\n      - name: a\n        image: b\n        restartPolicy: Never\n")
	f.Add(`{"apiVersion":"v1","kind":"Pod","metadata":{"annotations":{"tandem.dev/backup":"postgres","tandem.dev/backup-location":"s3://b/p"}},"spec":{"containers":[{"name":"db","image":"postgres"}]}}`)
	cfg := config.Default()
	f.Fuzz(func(t *testing.T, input string) {
		var out bytes.Buffer
		res, err := Inject("fuzz.yaml", strings.NewReader(input), &out, cfg)
		if err != nil || res.Changed == 0 || strings.Contains(strings.Join(res.Warnings, "\n"), "re-encoded") {
			return
		}
		var again bytes.Buffer
		if res, err := Inject("fuzz.yaml", bytes.NewReader(out.Bytes()), &again, cfg); err != nil || res.Changed != 0 || !bytes.Equal(again.Bytes(), out.Bytes()) {
			t.Errorf("injecting the output again: %v, %d changed:\n%s\nfrom:\n%s", err, res.Changed, again.String(), out.String())
		}
	})
}
