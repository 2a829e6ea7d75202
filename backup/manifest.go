package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tandem-dev/tandem/backup/objstore"
)

// manifestSuffix ends the name of a backup's manifest: <backup>.manifest.json, beside the backup in the directory
// and at the location. At the location it is written after the backup's object landed, so a backup object
// without one is incomplete and never chosen as the latest.
const manifestSuffix = ".manifest.json"

// ManifestFormat is the version of the manifest's format.
const ManifestFormat = 1

// Manifest is what tandem knows of one backup.
type Manifest struct {
	Format int    `json:"format"`
	Name   string `json:"name"`
	Engine string `json:"engine"`
	// Compression is the codec the object is compressed with (zstd; empty in backups written before it: gzip).
	Compression string `json:"compression,omitempty"`
	// ServerVersion and ClientVersion are the versions the dump's text names, when it names them.
	ServerVersion string `json:"serverVersion,omitempty"`
	ClientVersion string `json:"clientVersion,omitempty"`
	// Databases are the databases dumped: the configured one, or those a dump of all holds (mysql).
	Databases []string  `json:"databases,omitempty"`
	Pod       string    `json:"pod,omitempty"`
	Started   time.Time `json:"started"`
	Finished  time.Time `json:"finished"`
	// Bytes is the size of the object as stored (compressed), DumpBytes that of the dump before compression.
	Bytes     int64 `json:"bytes"`
	DumpBytes int64 `json:"dumpBytes"`
	// SHA256 is the hex SHA-256 of the object as stored.
	SHA256 string `json:"sha256"`
	// Tables are the dump's tables and the rows it holds for each (postgres, mysql; none for mongodb archives).
	Tables        []tableRows `json:"tables,omitempty"`
	TandemVersion string      `json:"tandemVersion,omitempty"`
	// Suspect says why the backup is suspect (a dump much smaller than the one before it): it is kept, but never
	// the latest, and retention does not count it. Empty when it is not.
	Suspect string `json:"suspect,omitempty"`
	// Verification is the result of the backup's last verification (nil: never verified).
	Verification *Verification `json:"verification,omitempty"`
}

// suspicion says why a dump of dumpBytes is suspect next to ref (what: which backup it is; nil: none known), or
// "" when it is not. ref is the last verified backup, or the backup before when none is: a database that really
// shrank makes one suspect backup, which verifies, and the ones after it are compared with that one.
func suspicion(dumpBytes int64, ref *Manifest, what string, percent int) string {
	if ref == nil || percent <= 0 || dumpBytes*100 >= ref.DumpBytes*int64(percent) {
		return ""
	}
	return fmt.Sprintf("the dump has %d bytes, %d%% of the %d of %s, %s (below %d%%: BACKUP_SUSPECT_BELOW_PERCENT)",
		dumpBytes, dumpBytes*100/max(ref.DumpBytes, 1), ref.DumpBytes, ref.Name, what, percent)
}

// readLocalManifest reads the manifest of the backup name in dir; nil, with no error, when it has none.
func readLocalManifest(dir, name string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, manifestName(name)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeManifest(data, name)
}

func manifestName(backup string) string { return backup + manifestSuffix }

// writeLocalManifest writes m beside its backup in dir.
func writeLocalManifest(dir string, m *Manifest) error {
	data, err := encodeManifest(m)
	if err != nil {
		return err
	}
	return writeFileSync(filepath.Join(dir, manifestName(m.Name)), data)
}

// encodeManifest is m as its file holds it: indented JSON and a newline.
func encodeManifest(m *Manifest) ([]byte, error) {
	data, err := json.MarshalIndent(m, "", "  ")
	return append(data, '\n'), err
}

// readManifest reads and checks the manifest of the backup name in the bucket; nil, with no error, when it has
// none.
func readManifest(ctx context.Context, b objstore.Bucket, name string) (*Manifest, error) {
	rc, err := b.Open(ctx, manifestName(name))
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 16<<20))
	if err != nil {
		return nil, err
	}
	return decodeManifest(data, name)
}

// decodeManifest reads and checks the manifest of the backup name.
func decodeManifest(data []byte, name string) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s is not a manifest: %w", manifestName(name), err)
	}
	switch {
	case m.Format != ManifestFormat:
		return nil, fmt.Errorf("%s has format %d; this tandem reads format %d", manifestName(name), m.Format, ManifestFormat)
	case m.Name != name:
		return nil, fmt.Errorf("%s is the manifest of %q, not of %q", manifestName(name), m.Name, name)
	case len(m.SHA256) != 64 || strings.Trim(m.SHA256, "0123456789abcdef") != "":
		return nil, fmt.Errorf("%s has no SHA-256", manifestName(name))
	}
	return &m, nil
}

// uploadManifest uploads the manifest of the backup name from dir, after the backup's object landed; a backup
// written before manifests existed has none, and is uploaded without.
func uploadManifest(ctx context.Context, b objstore.Bucket, dir, name string) error {
	path := filepath.Join(dir, manifestName(name))
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if _, err := upload(ctx, b, path, manifestName(name)); err != nil {
		return fmt.Errorf("uploading its manifest: %w", err)
	}
	return nil
}
