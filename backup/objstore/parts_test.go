package objstore

import (
	"context"
	"testing"
)

// TestPartSizes: parts start at 5 MiB, or larger for a large hint, and double every partsPerSize parts, so that
// the 10,000 parts S3 allows hold far more than the hint, and none is above S3's 5 GiB.
func TestPartSizes(t *testing.T) {
	b := &s3Bucket{bucket: "b"}
	for _, tc := range []struct {
		hint, first int64
	}{
		{0, 5 << 20},
		{1 << 30, 5 << 20},
		{40 << 30, 80 << 20},  // 2,000 parts of 40 MiB hold 78 GiB, less than twice the hint
		{1 << 40, 1280 << 20}, // 1 TiB: 2,000 parts of 640 MiB hold 1,250 GiB, less than twice
	} {
		w, err := b.Create(context.Background(), "k", CreateOptions{SizeHint: tc.hint})
		if err != nil {
			t.Fatal(err)
		}
		sw := w.(*s3Writer)
		if got := sw.partSize(1); got != tc.first {
			t.Errorf("hint %d: the first part has %d bytes, want %d", tc.hint, got, tc.first)
		}
		var total int64
		for n := int32(1); n <= maxParts; n++ {
			size := sw.partSize(n)
			if size < minPartSize || size > maxPartSize {
				t.Fatalf("hint %d: part %d has %d bytes", tc.hint, n, size)
			}
			total += size
		}
		if total < 2*tc.hint || total < 300<<30 {
			t.Errorf("hint %d: %d parts hold %d bytes", tc.hint, maxParts, total)
		}
		_ = w.Abort()
	}
}
