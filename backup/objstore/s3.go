package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// Objects are written in parts of at least 5 MiB: S3 takes at most 10,000 parts, each of at least 5 MiB but the
// last, and at most 5 GiB. A writer holds partsInFlight parts being uploaded and one being filled, so its memory
// is (partsInFlight+1) × the part size: 15 MiB at 5 MiB. An object smaller than one part is stored with one PUT
// when it is committed.
const (
	minPartSize   = 5 << 20
	maxPartSize   = 5 << 30
	maxParts      = 10000
	partsInFlight = 2
	// partsPerSize is how many parts go at one size before the size doubles, so that an object much larger than
	// its hint still fits in maxParts: from 5 MiB, 2,000 parts of each of five sizes hold 310 GiB.
	partsPerSize = maxParts / 5
)

type s3Bucket struct {
	client *s3.Client
	bucket string
	prefix string
	sse    types.ServerSideEncryption
	kms    string
}

func openS3(ctx context.Context, l Location) (*s3Bucket, error) {
	var opts []func(*config.LoadOptions) error
	if l.S3.Region != "" {
		opts = append(opts, config.WithRegion(l.S3.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("reading the AWS configuration: %w", err)
	}
	// A custom endpoint comes from the URL, or from AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, which the SDK reads.
	custom := l.S3.Endpoint != "" || os.Getenv("AWS_ENDPOINT_URL_S3") != "" || os.Getenv("AWS_ENDPOINT_URL") != ""
	if cfg.Region == "" {
		if !custom {
			return nil, fmt.Errorf("no AWS region: set AWS_REGION or add ?region= to %s", l)
		}
		cfg.Region = "us-east-1" // S3-compatible stores sign with it unless told otherwise
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if l.S3.Endpoint != "" {
			o.BaseEndpoint = aws.String(l.S3.Endpoint)
		}
		o.UsePathStyle = custom
		// tandem checks each backup against the SHA-256 its manifest records; the SDK cannot check the composite
		// checksum of an object stored in parts, and warns at every read of one.
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		if l.S3.PathStyle != nil {
			o.UsePathStyle = *l.S3.PathStyle
		}
	})
	return &s3Bucket{client: client, bucket: l.Bucket, prefix: l.Prefix, sse: types.ServerSideEncryption(l.S3.SSE), kms: l.S3.KMSKeyID}, nil
}

// unsignedPayload signs a part's headers, its CRC32 among them, and not its body: the store checks the body
// against that CRC32. Over HTTPS the SDK does so itself (with a trailing checksum); over plain HTTP, a store in
// the cluster, it would also hash every part with SHA-256 for SigV4, and the store again, a pass over the backup
// on each side that checks nothing the CRC32 does not. The payload hash set before the SDK's checksum step tells
// it not to.
var unsignedPayload = s3.WithAPIOptions(func(st *middleware.Stack) error {
	return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("tandemUnsignedPayload",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			return next.HandleFinalize(v4.SetPayloadHash(ctx, "UNSIGNED-PAYLOAD"), in)
		}), middleware.Before)
})

func (b *s3Bucket) key(key string) (*string, error) {
	if err := validKey(key); err != nil {
		return nil, err
	}
	return aws.String(b.prefix + key), nil
}

func (b *s3Bucket) kmsKey() *string {
	if b.kms == "" {
		return nil
	}
	return aws.String(b.kms)
}

func (b *s3Bucket) Create(ctx context.Context, key string, opts CreateOptions) (Writer, error) {
	k, err := b.key(key)
	if err != nil {
		return nil, err
	}
	contentType := opts.ContentType
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	// The first size fits an object of twice the hint in the first partsPerSize parts.
	base := int64(minPartSize)
	for base < maxPartSize && base*partsPerSize < 2*opts.SizeHint {
		base *= 2
	}
	ctx, cancel := context.WithCancelCause(ctx)
	w := &s3Writer{b: b, ctx: ctx, cancel: cancel, key: k, contentType: contentType, base: base, free: make(chan []byte, partsInFlight+1)}
	w.buf = w.buffer()
	return w, nil
}

// s3Writer streams an object to S3 as a multipart upload, started when the first part is full.
type s3Writer struct {
	b           *s3Bucket
	ctx         context.Context // ends the uploads of parts when Abort is called or a part failed
	cancel      context.CancelCauseFunc
	key         *string
	contentType string
	base        int64 // the size of the first partsPerSize parts

	buf       []byte      // the part being filled
	free      chan []byte // buffers whose part has been uploaded
	allocated int         // buffers made, at most partsInFlight+1 of each size
	inFlight  sync.WaitGroup
	slots     chan struct{} // one token per part being uploaded

	id      *string // the multipart upload's, nil until the first part is full
	next    int32   // the next part's number
	written int64

	mu    sync.Mutex
	parts []types.CompletedPart
	err   error // the first failure; every call after it fails
	ended bool  // committed or aborted
}

// partSize is the size of part n (from 1).
func (w *s3Writer) partSize(n int32) int64 {
	return min(w.base<<((n-1)/partsPerSize), maxPartSize)
}

// buffer returns an empty buffer for the part w.next+1: one freed, when it is as large as that part, or a new one.
func (w *s3Writer) buffer() []byte {
	size := w.partSize(w.next + 1)
	for {
		select {
		case b := <-w.free:
			if int64(cap(b)) == size {
				return b[:0]
			}
			w.allocated-- // a smaller part's: let it go
			continue
		default:
		}
		if w.allocated < partsInFlight+1 {
			w.allocated++
			return make([]byte, 0, size)
		}
		select {
		case b := <-w.free:
			if int64(cap(b)) == size {
				return b[:0]
			}
			w.allocated--
		case <-w.ctx.Done():
			return nil
		}
	}
}

func (w *s3Writer) fail(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
		w.cancel(err)
	}
	return w.err
}

func (w *s3Writer) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil && w.ctx.Err() != nil {
		w.err = context.Cause(w.ctx)
	}
	return w.err
}

func (w *s3Writer) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if err := w.failed(); err != nil {
			return n, err
		}
		if w.ended {
			return n, errors.New("write to an object already committed or aborted")
		}
		room := cap(w.buf) - len(w.buf)
		c := min(room, len(p))
		w.buf = append(w.buf, p[:c]...)
		p, n = p[c:], n+c
		if len(w.buf) == cap(w.buf) {
			if err := w.sendPart(false); err != nil {
				return n, err
			}
		}
	}
	w.written += int64(n)
	return n, nil
}

// sendPart starts uploading the full buffer as the next part, after starting the multipart upload for the first,
// and, unless it is the last, waits for a free buffer: with partsInFlight parts uploading, for one of them to end.
func (w *s3Writer) sendPart(last bool) error {
	if w.id == nil {
		mp, err := w.b.client.CreateMultipartUpload(w.ctx, &s3.CreateMultipartUploadInput{
			Bucket: &w.b.bucket, Key: w.key, ContentType: aws.String(w.contentType),
			ServerSideEncryption: w.b.sse, SSEKMSKeyId: w.b.kmsKey(), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
		})
		if err != nil {
			return w.fail(err)
		}
		w.id = mp.UploadId
		w.slots = make(chan struct{}, partsInFlight)
	}
	if w.next == maxParts {
		return w.fail(fmt.Errorf("the object is larger than %d parts hold (the last %d MiB)", maxParts, w.partSize(maxParts)>>20))
	}
	w.next++
	n, body := w.next, w.buf
	select {
	case w.slots <- struct{}{}:
	case <-w.ctx.Done():
		return w.failed()
	}
	w.inFlight.Add(1)
	go func() {
		defer w.inFlight.Done()
		defer func() { <-w.slots }()
		out, err := w.b.client.UploadPart(w.ctx, &s3.UploadPartInput{
			Bucket: &w.b.bucket, Key: w.key, UploadId: w.id, PartNumber: aws.Int32(n),
			Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
			ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
		}, unsignedPayload)
		if err != nil {
			w.fail(fmt.Errorf("part %d: %w", n, err))
			return
		}
		w.mu.Lock()
		w.parts = append(w.parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32})
		w.mu.Unlock()
		w.free <- body
	}()
	if last {
		w.buf = nil
		return nil
	}
	if w.buf = w.buffer(); w.buf == nil {
		return w.failed()
	}
	return nil
}

func (w *s3Writer) Commit() (int64, error) {
	if w.ended {
		return 0, errors.New("object already committed or aborted")
	}
	if err := w.commit(); err != nil {
		if aerr := w.Abort(); aerr != nil {
			return 0, fmt.Errorf("%w; %w", err, aerr)
		}
		return 0, err
	}
	w.ended = true
	w.cancel(nil)
	// What the store holds is what was written: a store that lost a part says so here, not at restore.
	size, err := w.b.Size(context.WithoutCancel(w.ctx), strings.TrimPrefix(*w.key, w.b.prefix))
	if err != nil {
		return 0, fmt.Errorf("stored, but reading its size back: %w", err)
	}
	if size != w.written {
		return 0, fmt.Errorf("wrote %d bytes, but the object has %d", w.written, size)
	}
	return size, nil
}

func (w *s3Writer) commit() error {
	if err := w.failed(); err != nil {
		return err
	}
	if w.id == nil { // smaller than a part: one PUT
		_, err := w.b.client.PutObject(w.ctx, &s3.PutObjectInput{
			Bucket: &w.b.bucket, Key: w.key, Body: bytes.NewReader(w.buf), ContentLength: aws.Int64(int64(len(w.buf))),
			ContentType: aws.String(w.contentType), ServerSideEncryption: w.b.sse, SSEKMSKeyId: w.b.kmsKey(),
		})
		return err
	}
	if len(w.buf) > 0 {
		if err := w.sendPart(true); err != nil {
			return err
		}
	}
	w.inFlight.Wait()
	if err := w.failed(); err != nil {
		return err
	}
	slices.SortFunc(w.parts, func(a, b types.CompletedPart) int { return int(aws.ToInt32(a.PartNumber) - aws.ToInt32(b.PartNumber)) })
	_, err := w.b.client.CompleteMultipartUpload(w.ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &w.b.bucket, Key: w.key, UploadId: w.id, MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts},
	})
	return err
}

func (w *s3Writer) Abort() error {
	if w.ended {
		return nil
	}
	w.ended = true
	w.cancel(errors.New("aborted"))
	w.inFlight.Wait()
	if w.id == nil {
		return nil
	}
	// Aborted even when the caller's ctx is done, so that the store does not keep (and bill) the parts; within
	// a SIGTERM's grace period.
	actx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), 10*time.Second)
	defer cancel()
	if _, err := w.b.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: &w.b.bucket, Key: w.key, UploadId: w.id}); err != nil {
		return fmt.Errorf("aborting the multipart upload %s of %s: %w (until it is aborted, or a lifecycle rule removes it, the store keeps its parts; none is visible as an object)",
			aws.ToString(w.id), aws.ToString(w.key), err)
	}
	return nil
}

func (b *s3Bucket) Uploads(ctx context.Context) ([]Upload, error) {
	var out []Upload
	p := s3.NewListMultipartUploadsPaginator(b.client, &s3.ListMultipartUploadsInput{Bucket: &b.bucket, Prefix: aws.String(b.prefix), Delimiter: aws.String("/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, u := range page.Uploads {
			key := strings.TrimPrefix(aws.ToString(u.Key), b.prefix)
			if key == "" || strings.Contains(key, "/") {
				continue
			}
			out = append(out, Upload{Key: key, ID: aws.ToString(u.UploadId), Initiated: aws.ToTime(u.Initiated)})
		}
	}
	return out, nil
}

func (b *s3Bucket) AbortUpload(ctx context.Context, u Upload) error {
	k, err := b.key(u.Key)
	if err != nil {
		return err
	}
	_, err = b.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &b.bucket, Key: k, UploadId: aws.String(u.ID)})
	return err
}

func (b *s3Bucket) Size(ctx context.Context, key string) (int64, error) {
	k, err := b.key(key)
	if err != nil {
		return 0, err
	}
	out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b.bucket, Key: k})
	if err != nil {
		return 0, s3NotFound(err)
	}
	return aws.ToInt64(out.ContentLength), nil
}

func (b *s3Bucket) List(ctx context.Context) ([]Object, error) {
	var objs []Object
	p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{Bucket: &b.bucket, Prefix: aws.String(b.prefix), Delimiter: aws.String("/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			key := strings.TrimPrefix(aws.ToString(o.Key), b.prefix)
			if key == "" || strings.Contains(key, "/") {
				continue
			}
			objs = append(objs, Object{Key: key, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)})
		}
	}
	return objs, nil
}

func (b *s3Bucket) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	k, err := b.key(key)
	if err != nil {
		return nil, err
	}
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &b.bucket, Key: k})
	if err != nil {
		return nil, s3NotFound(err)
	}
	return out.Body, nil
}

func (b *s3Bucket) Delete(ctx context.Context, key string) error {
	k, err := b.key(key)
	if err != nil {
		return err
	}
	_, err = b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b.bucket, Key: k})
	if err != nil && errors.Is(s3NotFound(err), ErrNotFound) {
		return nil
	}
	return err
}

// s3NotFound wraps ErrNotFound into the error of a request for an object that does not exist. (Only the error
// codes count: a bare 404 may also mean that the bucket does not exist.)
func s3NotFound(err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode() == "NotFound" || apiErr.ErrorCode() == "NoSuchKey") {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
