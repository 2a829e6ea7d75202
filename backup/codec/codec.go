// Package codec is how a backup's dump is compressed: zstd (klauspost/compress, at its fastest level, on a
// goroutine of its own) for new backups, and gzip, which backups taken before zstd used and which stay
// restorable. The extension a backup's name ends with (.zst, .gz) says which.
package codec

import (
	"compress/gzip"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Codec is one compression format.
type Codec struct {
	// Name is what logs and the manifest call it; Ext the extension of backups written with it, without the dot.
	Name, Ext string
	// ContentType is the media type of objects written with it.
	ContentType string
	newWriter   func(w io.Writer) (io.WriteCloser, error)
	newReader   func(r io.Reader) (io.ReadCloser, error)
}

// NewWriter returns a writer that compresses into w; Close ends the stream (it does not close w).
func (c *Codec) NewWriter(w io.Writer) (io.WriteCloser, error) { return c.newWriter(w) }

// NewReader returns a reader of what r holds, decompressed; a stream that is damaged or cut short is an error.
func (c *Codec) NewReader(r io.Reader) (io.ReadCloser, error) { return c.newReader(r) }

// zstdWindow is the zstd window. At the fastest level a SQL dump compresses as fast and as small with 1 MiB as with
// the level's default 4 MiB, and the encoder holds a quarter of the memory (BenchmarkCompress: about 3 MB against
// 9 MB a stream).
const zstdWindow = 1 << 20

var (
	// Zstd is the codec of new backups: at zstd's fastest level it compresses a SQL dump five times as fast as
	// gzip does, to an object as small (BenchmarkCompress: 170 MB/s a core at 2.6x, gzip 34 MB/s at 2.7x).
	// Concurrency 2 compresses one block while the next is read. Nothing faster keeps the ratio: zstd without
	// entropy coding and S2 are faster but compress only 1.6-1.7x, as do Debian's lz4 -1 and zstd --fast, and
	// Debian's zstd -1 (the C library) is no faster than this on the same text (172 MB/s).
	Zstd = &Codec{
		Name: "zstd", Ext: "zst", ContentType: "application/zstd",
		newWriter: func(w io.Writer) (io.WriteCloser, error) {
			return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(zstdWindow),
				zstd.WithEncoderConcurrency(2))
		},
		newReader: func(r io.Reader) (io.ReadCloser, error) {
			// Low memory and a window no larger than tandem writes: a restore never holds more than it must.
			d, err := zstd.NewReader(r, zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(64<<20), zstd.WithDecoderConcurrency(2))
			if err != nil {
				return nil, err
			}
			return d.IOReadCloser(), nil
		},
	}
	// Gzip is the codec of backups written before zstd: they are read, never written.
	Gzip = &Codec{
		Name: "gzip", Ext: "gz", ContentType: "application/gzip",
		newWriter: func(w io.Writer) (io.WriteCloser, error) { return gzip.NewWriterLevel(w, gzip.DefaultCompression) },
		newReader: func(r io.Reader) (io.ReadCloser, error) {
			zr, err := gzip.NewReader(r)
			if err != nil {
				return nil, fmt.Errorf("not a gzip stream: %w", err)
			}
			return zr, nil
		},
	}
)

// All are the codecs a backup's name may end with, the one new backups use first.
var All = []*Codec{Zstd, Gzip}

// ForExt returns the codec of the extension ext (without the dot).
func ForExt(ext string) (*Codec, bool) {
	i := slices.IndexFunc(All, func(c *Codec) bool { return c.Ext == ext })
	if i < 0 {
		return nil, false
	}
	return All[i], true
}

// Exts are the extensions of All, as a regular expression's alternatives: "zst|gz".
func Exts() string {
	var exts []string
	for _, c := range All {
		exts = append(exts, c.Ext)
	}
	return strings.Join(exts, "|")
}
