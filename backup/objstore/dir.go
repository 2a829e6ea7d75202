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

func (d *dir) Upload(ctx context.Context, key string, f *os.File, size int64) (err error) {
	if err := validKey(key); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(d.path, "."+key+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err := io.Copy(tmp, contextReader{ctx, io.NewSectionReader(f, 0, size)})
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("copied %d bytes of %d", n, size)
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(d.path, key))
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

// contextReader stops a copy when ctx is done.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
