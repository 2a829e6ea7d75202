package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// Multipart uploads: S3 allows at most 10,000 parts of at least 5 MiB (but the last). Parts are read straight
// from the file, one at a time, so an upload holds no part in memory whatever its size.
const (
	minPartSize = 5 << 20
	maxParts    = 9000 // below S3's 10,000, with room to spare
	// multipartAbove is the size above which a file is uploaded in parts rather than with one PUT.
	multipartAbove = 64 << 20
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
		if l.S3.PathStyle != nil {
			o.UsePathStyle = *l.S3.PathStyle
		}
	})
	return &s3Bucket{client: client, bucket: l.Bucket, prefix: l.Prefix, sse: types.ServerSideEncryption(l.S3.SSE), kms: l.S3.KMSKeyID}, nil
}

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

func (b *s3Bucket) Upload(ctx context.Context, key string, f *os.File, size int64) error {
	k, err := b.key(key)
	if err != nil {
		return err
	}
	if size <= multipartAbove {
		_, err := b.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &b.bucket, Key: k, Body: io.NewSectionReader(f, 0, size), ContentLength: aws.Int64(size),
			ContentType: aws.String("application/gzip"), ServerSideEncryption: b.sse, SSEKMSKeyId: b.kmsKey(),
		})
		return err
	}
	mp, err := b.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &b.bucket, Key: k, ContentType: aws.String("application/gzip"),
		ServerSideEncryption: b.sse, SSEKMSKeyId: b.kmsKey(), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
	})
	if err != nil {
		return err
	}
	parts, err := b.uploadParts(ctx, k, mp.UploadId, f, size)
	if err == nil {
		_, err = b.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: &b.bucket, Key: k, UploadId: mp.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		})
	}
	if err != nil {
		// Abort even when ctx is done, so the store does not keep (and bill) the parts.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, aerr := b.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: &b.bucket, Key: k, UploadId: mp.UploadId}); aerr != nil {
			return fmt.Errorf("%w (and aborting the multipart upload %s failed: %v)", err, aws.ToString(mp.UploadId), aerr)
		}
	}
	return err
}

func (b *s3Bucket) uploadParts(ctx context.Context, k, id *string, f *os.File, size int64) ([]types.CompletedPart, error) {
	partSize := max(int64(minPartSize), size/maxParts+1)
	var parts []types.CompletedPart
	for off, n := int64(0), int32(1); off < size; off, n = off+partSize, n+1 {
		length := min(partSize, size-off)
		out, err := b.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: &b.bucket, Key: k, UploadId: id, PartNumber: aws.Int32(n),
			Body: io.NewSectionReader(f, off, length), ContentLength: aws.Int64(length),
			ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
		})
		if err != nil {
			return nil, fmt.Errorf("part %d: %w", n, err)
		}
		parts = append(parts, types.CompletedPart{
			PartNumber: aws.Int32(n), ETag: out.ETag,
			ChecksumCRC32: out.ChecksumCRC32,
		})
	}
	return parts, nil
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
