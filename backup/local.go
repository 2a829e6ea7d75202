package backup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/tandem-dev/tandem/backup/codec"
)

// Backups are named <database>-<UTC timestamp>-<pod>.<ext>.zst, or <database>-<UTC timestamp>.<ext>.zst where no
// pod name is known (a backup taken outside a pod, or by an earlier version); backups written before zstd end in
// .gz instead. While a local copy is written, its file is .<name>.partial, hidden and ending in neither, so that
// nothing looks like a backup until it is one.
// <name>.uploaded beside a backup records that it landed in the bucket (its content is the object's URL).
const (
	timestampLayout = "20060102T150405Z"
	partialSuffix   = ".partial"
	uploadedSuffix  = ".uploaded"
)

var backupNameRE = regexp.MustCompile(`^(.+?)-(\d{8}T\d{6}Z)(?:-([a-z0-9][a-z0-9.-]*))?\.([a-z0-9]+)\.(` + codec.Exts() + `)$`)

// backupName is the file and object name of a new backup of pod (empty: none) taken at t.
func backupName(base, pod, ext string, t time.Time) string {
	if pod != "" {
		return fmt.Sprintf("%s-%s-%s.%s.%s", base, t.UTC().Format(timestampLayout), pod, ext, codec.Zstd.Ext)
	}
	return fmt.Sprintf("%s-%s.%s.%s", base, t.UTC().Format(timestampLayout), ext, codec.Zstd.Ext)
}

// parsedName is what a backup's name says.
type parsedName struct {
	base string
	time time.Time
	pod  string // empty when the name has none
	ext  string
	// codec is how the dump is compressed.
	codec *codec.Codec
}

// parseBackupName reads a backup's name.
func parseBackupName(name string) (parsedName, bool) {
	m := backupNameRE.FindStringSubmatch(name)
	if m == nil {
		return parsedName{}, false
	}
	t, err := time.Parse(timestampLayout, m[2])
	if err != nil {
		return parsedName{}, false
	}
	c, _ := codec.ForExt(m[5])
	return parsedName{base: m[1], time: t, pod: m[3], ext: m[4], codec: c}, true
}

// localBackup is a finished backup file in the backups directory.
type localBackup struct {
	name     string
	time     time.Time
	uploaded bool
}

// listLocal returns the finished backups in dir, newest first.
func listLocal(dir string) ([]localBackup, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, e := range entries {
		names[e.Name()] = true
	}
	var out []localBackup
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if n, ok := parseBackupName(e.Name()); ok {
			out = append(out, localBackup{name: e.Name(), time: n.time, uploaded: names[e.Name()+uploadedSuffix]})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].time.Equal(out[j].time) {
			return out[i].time.After(out[j].time)
		}
		return out[i].name > out[j].name
	})
	return out, nil
}

// removePartials deletes the partial files a killed sidecar left behind, and returns their names.
func removePartials(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, ".") && strings.HasSuffix(n, partialSuffix) {
			if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, n)
		}
	}
	return removed, errors.Join(errs...)
}

// prune deletes uploaded backups beyond the newest keep that are not suspect (and suspect ones older than
// those), with their markers and manifests, and markers and manifests whose backup is gone. A backup not uploaded
// yet is never deleted, and does not count towards keep.
func prune(dir string, keep int) (removed []string, err error) {
	backups, err := listLocal(dir)
	if err != nil {
		return nil, err
	}
	var errs []error
	good := 0 // uploaded backups that are not suspect, newest first
	for _, b := range backups {
		if !b.uploaded {
			continue
		}
		// A suspect backup does not count towards keep; it goes once keep good ones are newer.
		if m, err := readLocalManifest(dir, b.name); err == nil && m != nil && m.Suspect != "" {
			if good < keep {
				continue
			}
		} else if good++; good <= keep {
			continue
		}
		p := filepath.Join(dir, b.name)
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		for _, companion := range []string{p + uploadedSuffix, p + manifestSuffix} {
			if err := os.Remove(companion); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		removed = append(removed, b.name)
	}
	// Markers and manifests of backups someone deleted by hand, or of a dump killed before its file was renamed.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return removed, errors.Join(append(errs, err)...)
	}
	for _, e := range entries {
		for _, suffix := range []string{uploadedSuffix, manifestSuffix} {
			if n, ok := strings.CutSuffix(e.Name(), suffix); ok {
				if _, err := os.Lstat(filepath.Join(dir, n)); errors.Is(err, os.ErrNotExist) {
					_ = os.Remove(filepath.Join(dir, e.Name()))
				}
			}
		}
	}
	return removed, errors.Join(errs...)
}

// markUploaded records that name landed at objectURL.
func markUploaded(dir, name, objectURL string) error {
	return writeFileSync(filepath.Join(dir, name+uploadedSuffix), []byte(objectURL+"\n"))
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir makes a rename or a removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
