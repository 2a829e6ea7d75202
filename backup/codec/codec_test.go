package codec

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// sampleDump is about size bytes of PostgreSQL COPY text like the backup benchmark's orders table (ids, a
// status, an amount, a currency, a timestamp, a UUID, a note of a few words), made from a fixed seed: as
// compressible as a real dump of such rows (2.5-3x with gzip).
func sampleDump(size int) []byte {
	words := strings.Fields("the a customer asked for delivery before noon please leave parcel at door gift wrap " +
		"fragile handle with care second attempt address changed call on arrival invoice requested express " +
		"standard return exchange size colour blue red green large small medium back office neighbour")
	status := strings.Fields("pending paid shipped delivered cancelled refunded")
	currency := strings.Fields("EUR USD GBP SEK CHF")
	rng := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	b.Grow(size + 256)
	b.WriteString("COPY public.orders (id, customer_id, status, amount, currency, created_at, public_id, note) FROM stdin;\n")
	for i := 1; b.Len() < size; i++ {
		fmt.Fprintf(&b, "%d\t%d\t%s\t%.2f\t%s\t2024-%02d-%02d %02d:%02d:%02d+00\t%08x-%04x-%04x-%04x-%012x\t",
			i, 1+rng.IntN(250000), status[rng.IntN(len(status))], rng.Float64()*rng.Float64()*2000, currency[rng.IntN(len(currency))],
			1+i/2600000%12, 1+i/86400%28, i/3600%24, i/60%60, i%60,
			rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint64()&0xffffffffffff)
		for n := rng.IntN(8); n > 0; n-- {
			b.WriteString(words[rng.IntN(len(words))])
			if n > 1 {
				b.WriteByte(' ')
			}
		}
		b.WriteByte('\n')
	}
	b.WriteString("\\.\n")
	return b.Bytes()
}

var sample = sync.OnceValue(func() []byte { return sampleDump(64 << 20) })

func TestRoundTrip(t *testing.T) {
	in := sampleDump(8 << 20)
	for _, c := range All {
		t.Run(c.Name, func(t *testing.T) {
			var z bytes.Buffer
			w, err := c.NewWriter(&z)
			if err != nil {
				t.Fatal(err)
			}
			// Written in pieces, as a dump arrives.
			for rest := in; len(rest) > 0; {
				n := min(len(rest), 100_000)
				if _, err := w.Write(rest[:n]); err != nil {
					t.Fatal(err)
				}
				rest = rest[n:]
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if z.Len() >= len(in)/2 {
				t.Errorf("%s made %d bytes of %d: not compressed", c.Name, z.Len(), len(in))
			}
			r, err := c.NewReader(bytes.NewReader(z.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			out, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, in) {
				t.Fatalf("%s: read back %d bytes that differ from the %d written", c.Name, len(out), len(in))
			}
			// Cut short, the stream is an error, never a shorter dump.
			r, err = c.NewReader(bytes.NewReader(z.Bytes()[:z.Len()/2]))
			if err == nil {
				_, err = io.Copy(io.Discard, r)
			}
			if err == nil {
				t.Errorf("%s: a stream cut in half read without an error", c.Name)
			}
		})
	}
}

func TestForExt(t *testing.T) {
	for _, c := range All {
		if got, ok := ForExt(c.Ext); !ok || got != c {
			t.Errorf("ForExt(%q) = %v, %v", c.Ext, got, ok)
		}
	}
	if _, ok := ForExt("bz2"); ok {
		t.Error("ForExt(bz2) found a codec")
	}
	if got := Exts(); got != "zst|gz" {
		t.Errorf("Exts() = %q", got)
	}
}

// BenchmarkCompress compresses 64 MiB of COPY text with the candidates for new backups, and reports the ratio
// (ratio) and, per stream, what the writer allocated (B/op). MB/s is of the uncompressed input. The choice of
// Zstd rests on it: on two cores it must outrun pg_dump (about 180 MB/s of SQL here) with the core pg_dump and
// the server leave it.
//
//	go test ./backup/codec/ -run '^$' -bench Compress -benchmem
func BenchmarkCompress(b *testing.B) {
	in := sample()
	candidates := []struct {
		name string
		new  func(io.Writer) (io.WriteCloser, error)
	}{
		{"gzip-stdlib-6", func(w io.Writer) (io.WriteCloser, error) { return gzip.NewWriterLevel(w, 6) }},
		{"gzip-klauspost-6", func(w io.Writer) (io.WriteCloser, error) { return kgzip.NewWriterLevel(w, 6) }},
		{"gzip-klauspost-1", func(w io.Writer) (io.WriteCloser, error) { return kgzip.NewWriterLevel(w, 1) }},
		{"zstd-fastest-1core", func(w io.Writer) (io.WriteCloser, error) {
			return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		}},
		{"zstd-default-1core", func(w io.Writer) (io.WriteCloser, error) {
			return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
		}},
		{"zstd-default-blocks", func(w io.Writer) (io.WriteCloser, error) {
			return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithConcurrentBlocks(true))
		}},
		{"zstd-fastest-noentropy", func(w io.Writer) (io.WriteCloser, error) {
			return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
				zstd.WithNoEntropyCompression(true))
		}},
		{"zstd-fastest-1MiB-window", func(w io.Writer) (io.WriteCloser, error) {
			return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
				zstd.WithWindowSize(1<<20))
		}},
		{"s2-1core", func(w io.Writer) (io.WriteCloser, error) { return s2.NewWriter(w, s2.WriterConcurrency(1)), nil }},
		{"s2-better-1core", func(w io.Writer) (io.WriteCloser, error) {
			return s2.NewWriter(w, s2.WriterConcurrency(1), s2.WriterBetterCompression()), nil
		}},
		{"tandem", Zstd.NewWriter},
	}
	for _, c := range candidates {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			var out countingWriter
			for b.Loop() {
				out = 0
				w, err := c.new(&out)
				if err != nil {
					b.Fatal(err)
				}
				for rest := in; len(rest) > 0; {
					n := min(len(rest), 32<<10) // pg_dump's pipe writes
					if _, err := w.Write(rest[:n]); err != nil {
						b.Fatal(err)
					}
					rest = rest[n:]
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(in))/float64(out), "ratio")
		})
	}
}

// BenchmarkDecompress reads back what each codec wrote; MB/s is of the uncompressed output.
func BenchmarkDecompress(b *testing.B) {
	in := sample()
	for _, c := range All {
		var z bytes.Buffer
		w, _ := c.NewWriter(&z)
		_, _ = w.Write(in)
		_ = w.Close()
		b.Run(c.Name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				r, err := c.NewReader(bytes.NewReader(z.Bytes()))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, r); err != nil {
					b.Fatal(err)
				}
				r.Close()
			}
		})
	}
}

type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}
