package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// dir is a file:// location: objects are the regular files of one directory. An object is written under a
// hidden temporary name in the same directory, synced, and renamed, so it appears whole or not at all.
type dir struct{ path string }

func openDir(path string) (*dir, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", path)
	}
	return &dir{path: path}, nil
}

func (d *dir) Create(ctx context.Context, key string, _ CreateOptions) (Writer, error) {
	if err := validKey(key); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(d.path, "."+key+".*.tmp")
	if err != nil {
		return nil, err
	}
	return &dirWriter{ctx: ctx, f: tmp, path: filepath.Join(d.path, key)}, nil
}

// dirWriter writes an object to a hidden temporary file beside it, renamed to the object's name by Commit.
type dirWriter struct {
	ctx   context.Context
	f     *os.File
	path  string
	n     int64
	err   error
	ended bool
}

func (w *dirWriter) Write(p []byte) (int, error) {
	if w.err == nil {
		w.err = w.ctx.Err()
	}
	if w.err == nil && w.ended {
		w.err = errors.New("write to an object already committed or aborted")
	}
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.f.Write(p)
	w.n += int64(n)
	w.err = err
	return n, err
}

func (w *dirWriter) Commit() (int64, error) {
	if w.ended {
		return 0, errors.New("object already committed or aborted")
	}
	err := w.err
	if err == nil {
		err = w.ctx.Err()
	}
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(w.f.Name(), w.path)
		if err == nil {
			if err = syncDir(filepath.Dir(w.path)); err != nil {
				os.Remove(w.path) // not durable: not there
			}
		}
	}
	if err != nil {
		_ = w.Abort()
		return 0, err
	}
	w.ended = true
	return w.n, nil
}

func (w *dirWriter) Abort() error {
	if w.ended {
		return nil
	}
	w.ended = true
	w.f.Close()
	if err := os.Remove(w.f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (d *dir) Uploads(context.Context) ([]Upload, error) {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return nil, err
	}
	var out []Upload
	for _, e := range entries {
		name := e.Name()
		rest, ok := strings.CutPrefix(name, ".")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		rest, ok = strings.CutSuffix(rest, ".tmp")
		i := strings.LastIndex(rest, ".")
		if !ok || i <= 0 {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // gone since ReadDir
		}
		out = append(out, Upload{Key: rest[:i], ID: name, Initiated: info.ModTime()})
	}
	return out, nil
}

func (d *dir) AbortUpload(_ context.Context, u Upload) error {
	if err := validKey(u.ID); err != nil || !strings.HasPrefix(u.ID, "."+u.Key+".") {
		return fmt.Errorf("%q is not an upload of %q", u.ID, u.Key)
	}
	if err := os.Remove(filepath.Join(d.path, u.ID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (d *dir) Size(_ context.Context, key string) (int64, error) {
	if err := validKey(key); err != nil {
		return 0, err
	}
	st, err := os.Stat(filepath.Join(d.path, key))
	if err != nil {
		return 0, notFound(err)
	}
	return st.Size(), nil
}

func (d *dir) List(context.Context) ([]Object, error) {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return nil, err
	}
	var objs []Object
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since ReadDir
		} else if err != nil {
			return nil, err
		}
		objs = append(objs, Object{Key: e.Name(), Size: info.Size(), ModTime: info.ModTime()})
	}
	return objs, nil
}

func (d *dir) Open(_ context.Context, key string) (io.ReadCloser, error) {
	if err := validKey(key); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(d.path, key))
	if err != nil {
		return nil, notFound(err)
	}
	return f, nil
}

func (d *dir) Delete(_ context.Context, key string) error {
	if err := validKey(key); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(d.path, key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
