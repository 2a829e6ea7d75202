package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// The sidecar's directory is an emptyDir with a sizeLimit (BACKUP_DIR_SIZE_LIMIT), and the kubelet evicts the
// pod, database and all, whose emptyDir outgrows it. So the sidecar keeps below it: before a verification or a
// local copy it checks that what it needs fits, and while a verification restores it watches the directory and
// stops the verification before the limit is reached.

// ReasonSpace: a verification would not fit in what the directory's size limit leaves; the backup is not at
// fault, and its manifest records nothing.
const ReasonSpace = "space"

// spaceMargin is the share of the limit the sidecar leaves unused, for what it cannot foresee: the kubelet
// measures the volume only now and then, and a server writes between two of the sidecar's looks.
const spaceMargin = 10 // percent

// verifyNeed is about how much disk a throwaway server takes to restore a dump of dumpBytes: its data directory
// holds the tables, their indexes and the server's own files, measured at 1.5 times the dump (make bench-backup's
// peak-disk-MiB) and 64 MiB.
func verifyNeed(dumpBytes int64) int64 { return dumpBytes*3/2 + 64<<20 }

// usage is the disk the files under dir take, as du counts it (allocated blocks); files that vanish while it
// counts are left out.
func usage(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // vanished, or unreadable: not ours to count
		}
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				total += st.Blocks * 512
			}
		}
		return nil
	})
	return total
}

// usable is what the directory may hold once the margin is left: 0 for no limit.
func (c *Config) usable() int64 { return c.DirSizeLimit / 100 * (100 - spaceMargin) }

// bytesString is n bytes as a quantity: 1536Mi, 16Gi.
func bytesString(n int64) string {
	const mi = 1 << 20
	if n >= mi {
		n = (n + mi - 1) / mi * mi // whole MiB: enough for a message
	}
	return resource.NewQuantity(n, resource.BinarySI).String()
}

// checkVerifySpace says, as a *VerifyError, when restoring a dump of dumpBytes would not fit in the directory.
func (c *Config) checkVerifySpace(name string, dumpBytes int64) error {
	if c.DirSizeLimit == 0 {
		return nil
	}
	used, need := usage(c.Dir), verifyNeed(dumpBytes)
	if used+need <= c.usable() {
		return nil
	}
	return verifyErr(ReasonSpace, "verifying %s needs about %s of disk for its throwaway server (1.5 times its %s dump), and %s has %s "+
		"of its %s limit left (BACKUP_DIR_SIZE_LIMIT, %d%% held back), so it was not started: raise the profile's dataSizeLimit "+
		"to at least %s, or verify it elsewhere with tandem verify --from %s", name, bytesString(need), bytesString(dumpBytes), c.Dir,
		bytesString(max(c.usable()-used, 0)), bytesString(c.DirSizeLimit), spaceMargin, bytesString((used+need)*100/(100-spaceMargin)), name)
}

// errOutgrew is a verification stopped because the directory neared its limit.
var errOutgrew = errors.New("the directory neared its size limit")

// watchSpace returns a context that ends, with a cause wrapping errOutgrew, when the directory holds more than it
// may; stop ends the watch. With no limit it only derives ctx.
func (c *Config) watchSpace(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	if c.DirSizeLimit == 0 {
		return ctx, func() { cancel(nil) }
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if used := usage(c.Dir); used > c.usable() {
					cancel(fmt.Errorf("%w: %s held %s of its %s limit (BACKUP_DIR_SIZE_LIMIT, %d%% held back), so the verification "+
						"was stopped before the kubelet evicts the pod: raise the profile's dataSizeLimit", errOutgrew, c.Dir,
						bytesString(used), bytesString(c.DirSizeLimit), spaceMargin))
					return
				}
			}
		}
	}()
	return ctx, func() { close(done); cancel(nil) }
}
