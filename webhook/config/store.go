package config

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
)

// Store holds the configuration in force and reloads it when its file changes. Reading it is one atomic load,
// so the admission path never touches the file.
type Store struct {
	path    string
	current atomic.Pointer[Config]

	mu       sync.Mutex // serialises reloads
	last     []byte     // content of the configuration in force
	rejected []byte     // content last refused, so a bad file is reported once, not at every poll
}

// NewStore loads the configuration at path (the built-in one when path is empty). A bad file is an error here:
// tandem does not start on a configuration it cannot use.
func NewStore(path string) (*Store, error) {
	s := &Store{path: path}
	if path == "" {
		s.current.Store(Default())
		return s, nil
	}
	c, data, err := load(path)
	if err != nil {
		return nil, err
	}
	s.current.Store(c)
	s.last = data
	return s, nil
}

// NewStaticStore holds c and never reloads.
func NewStaticStore(c *Config) *Store {
	s := &Store{}
	s.current.Store(c)
	return s
}

// Get returns the configuration in force. It must not be modified.
func (s *Store) Get() *Config { return s.current.Load() }

// Reload reads the file again. A file that fails to read or validate leaves the configuration in force
// unchanged and returns why; changed reports whether a new configuration took effect.
func (s *Store) Reload() (changed bool, err error) {
	if s.path == "" {
		return false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := os.ReadFile(s.path)
	if err != nil {
		return false, fmt.Errorf("reading configuration: %w", err)
	}
	if bytes.Equal(data, s.last) || bytes.Equal(data, s.rejected) {
		return false, nil
	}
	c, err := Parse(data)
	if err != nil {
		s.rejected = data
		return false, fmt.Errorf("configuration %s: %w", s.path, err)
	}
	s.current.Store(c)
	s.last = data
	return true, nil
}

// PollInterval is how often Watch rereads the file even without a change notification, as certwatcher does:
// some volume types never emit one.
const PollInterval = 10 * time.Second

// Watch reloads the configuration whenever its file changes until ctx ends. It watches the file's directory,
// since a mounted ConfigMap is updated by swapping a symlink, not by writing the file.
func (s *Store) Watch(ctx context.Context, log logr.Logger) error {
	if s.path == "" {
		<-ctx.Done()
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching configuration: %w", err)
	}
	defer w.Close()
	if err := w.Add(filepath.Dir(s.path)); err != nil {
		return fmt.Errorf("watching configuration directory: %w", err)
	}
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	reload := func() {
		changed, err := s.Reload()
		switch {
		case err != nil:
			log.Error(err, "configuration not reloaded; keeping the last good one", "path", s.path)
		case changed:
			log.Info("configuration reloaded", "path", s.path, "profiles", s.Get().ProfileNames())
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.Events:
			reload()
		case err := <-w.Errors:
			log.Error(err, "configuration watch error", "path", s.path)
		case <-tick.C:
			reload()
		}
	}
}
