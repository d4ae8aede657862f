package debian

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// get fetches url and hands the body to read. A network error, a 5xx or a
// 429 is retried with exponential backoff, up to the configured number of
// retries; read is then called again from the start, so it must reset
// whatever it wrote. Other statuses are returned as *HTTPError at once.
func (f *Fetcher) get(ctx context.Context, url string, read func(io.Reader) error) error {
	wait := f.opts.backoff
	for attempt := 0; ; attempt++ {
		err := f.getOnce(ctx, url, read)
		if err == nil || !retryable(err) || attempt >= f.opts.retries {
			if err != nil && attempt > 0 {
				return fmt.Errorf("after %d attempts: %w", attempt+1, err)
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait *= 2
	}
}

func (f *Fetcher) getOnce(ctx context.Context, url string, read func(io.Reader) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := f.opts.client.Do(req)
	if err != nil {
		return &networkError{err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &HTTPError{URL: url, StatusCode: resp.StatusCode, Status: resp.Status}
	}
	if err := read(&bodyReader{r: resp.Body}); err != nil {
		return err
	}
	return nil
}

// bodyReader marks errors that come from reading the response body, as
// opposed to errors of whoever consumes it, so that a dropped connection
// is retried and a checksum mismatch is not.
type bodyReader struct{ r io.Reader }

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = &networkError{err: err}
	}
	return n, err
}

type networkError struct{ err error }

func (e *networkError) Error() string { return e.err.Error() }
func (e *networkError) Unwrap() error { return e.err }

func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ne *networkError
	if errors.As(err, &ne) {
		return true
	}
	var he *HTTPError
	if errors.As(err, &he) {
		return he.StatusCode >= 500 || he.StatusCode == http.StatusTooManyRequests
	}
	return false
}
