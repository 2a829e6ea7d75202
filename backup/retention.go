package backup

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/tandem-dev/tandem/backup/objstore"
)

// remoteBackup is a backup at the location: an object directly under the location's prefix whose name is one
// this sidecar gives its backups.
type remoteBackup struct {
	key  string
	time time.Time
	// complete says that its manifest is there too; suspect, that the manifest says it is suspect, or that its
	// verification failed (retention counts neither); verified, that it passed verification.
	complete, suspect, verified bool
}

// listRemote returns the backups of the database base with extension ext directly under the bucket's prefix,
// newest first (see backupsAmong).
func listRemote(ctx context.Context, b objstore.Bucket, base, ext string) ([]remoteBackup, error) {
	objs, err := b.List(ctx)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(objs))
	for i, o := range objs {
		keys[i] = o.Key
	}
	return backupsAmong(keys, base, ext), nil
}

// backupsAmong returns the keys that are backups of the database base with extension ext, newest first by the
// timestamp in their names. Other keys (other databases, other engines, names that do not parse) are left out:
// retention never considers them.
func backupsAmong(keys []string, base, ext string) []remoteBackup {
	present := make(map[string]bool, len(keys))
	for _, k := range keys {
		present[k] = true
	}
	var out []remoteBackup
	for _, k := range keys {
		if n, ok := parseBackupName(k); ok && n.base == base && n.ext == ext {
			out = append(out, remoteBackup{key: k, time: n.time, complete: present[manifestName(k)]})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].time.Equal(out[j].time) {
			return out[i].time.After(out[j].time)
		}
		return out[i].key > out[j].key
	})
	return out
}

// expired returns the backups (newest first, as listRemote returns them) that retention deletes at now: those
// beyond the newest keep that are not suspect (0: no count limit), suspect ones older than those, and those
// older than maxAge (0: no age limit). The newest backup that is not suspect (or, when all are, the newest) and
// the newest that passed verification are never among them, whatever the settings.
func expired(backups []remoteBackup, keep int, maxAge time.Duration, now time.Time) []remoteBackup {
	protected, verified := 0, -1
	for i, b := range backups {
		if !b.suspect {
			protected = i
			break
		}
	}
	for i, b := range backups {
		if b.verified && !b.suspect {
			verified = i
			break
		}
	}
	var out []remoteBackup
	good := 0 // backups that are not suspect, this one included
	for i, b := range backups {
		if !b.suspect {
			good++
		}
		if i == protected || i == verified {
			continue
		}
		old := maxAge > 0 && now.Sub(b.time) > maxAge
		if (b.suspect && keep > 0 && good >= keep) || (!b.suspect && keep > 0 && good > keep) || old {
			out = append(out, b)
		}
	}
	return out
}

// readVerdicts reads the manifests of the complete backups and marks the suspect ones (a failed verification
// included) and the verified ones. A manifest that cannot be read leaves its backup counted as it was before
// manifests: not suspect, not verified.
func readVerdicts(ctx context.Context, b objstore.Bucket, backups []remoteBackup) {
	for i := range backups {
		if !backups[i].complete {
			continue
		}
		if m, err := readManifest(ctx, b, backups[i].key); err == nil && m != nil {
			backups[i].suspect = m.Suspect != "" || m.failedVerification()
			backups[i].verified = m.passed()
		}
	}
}

// applyRetention deletes this database's backups at the location that BACKUP_REMOTE_KEEP and
// BACKUP_REMOTE_MAX_AGE no longer keep. A delete that fails is logged and counted, and the others go on; it
// returns the keys deleted and the first error.
func (r *Runner) applyRetention(ctx context.Context) ([]string, error) {
	if r.cfg.RemoteKeep == 0 && r.cfg.RemoteMaxAge == 0 {
		return nil, nil
	}
	bucket, err := objstore.Open(ctx, r.loc)
	if err != nil {
		r.metrics.failed("retention")
		r.log.Error(err, "remote retention: cannot open the backup location", "location", r.loc.String())
		return nil, err
	}
	backups, err := listRemote(ctx, bucket, r.cfg.baseName(), r.eng.ext)
	if err != nil {
		r.metrics.failed("retention")
		r.log.Error(err, "remote retention: cannot list the backup location; nothing deleted", "location", r.loc.String())
		return nil, err
	}
	readVerdicts(ctx, bucket, backups)
	var deleted []string
	var firstErr error
	for _, b := range expired(backups, r.cfg.RemoteKeep, r.cfg.RemoteMaxAge, time.Now()) {
		url := r.loc.ObjectURL(b.key)
		if err := bucket.Delete(ctx, b.key); err != nil && !isNotFound(err) {
			r.metrics.failed("retention")
			r.log.Error(err, "remote retention: delete failed; the backup stays until the next pass", "object", url)
			if firstErr == nil {
				firstErr = fmt.Errorf("delete %s: %w", url, err)
			}
			continue
		}
		// Its manifest after it: a manifest without its backup is never read, a backup without its manifest is
		// incomplete.
		if err := bucket.Delete(ctx, manifestName(b.key)); err != nil && !isNotFound(err) {
			r.metrics.failed("retention")
			r.log.Error(err, "remote retention: deleting a backup's manifest failed", "object", r.loc.ObjectURL(manifestName(b.key)))
		}
		deleted = append(deleted, b.key)
	}
	if len(deleted) > 0 {
		r.log.Info("remote retention: deleted old backups", "location", r.loc.String(), "keep", r.cfg.RemoteKeep,
			"maxAge", r.cfg.RemoteMaxAge.String(), "deleted", deleted)
	}
	return deleted, firstErr
}
