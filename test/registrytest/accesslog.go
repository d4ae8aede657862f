package registrytest

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Request is one line of the registry's access log.
type Request struct {
	Method string
	// URI is the path and query as the client sent them.
	URI    string
	Status int
	// Line is the whole log line.
	Line string
}

// accessLine matches the combined log format the registry writes:
//
//	127.0.0.1 - - [25/Nov/2026:10:42:38 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "curl/7.88.1"
var accessLine = regexp.MustCompile(`^\S+ \S+ \S+ \[[^\]]+\] "([A-Z]+) (\S+) [^"]*" (\d{3}) `)

// ParseAccessLine parses one access log line; ok is false for other lines.
func ParseAccessLine(line string) (req Request, ok bool) {
	m := accessLine.FindStringSubmatch(line)
	if m == nil {
		return Request{}, false
	}
	status, err := strconv.Atoi(m[3])
	if err != nil {
		return Request{}, false
	}
	return Request{Method: m[1], URI: m[2], Status: status, Line: line}, true
}

// Path returns the request's path, unescaped.
func (q Request) Path() string {
	u, err := url.ParseRequestURI(q.URI)
	if err != nil {
		return q.URI
	}
	return u.Path
}

// Query returns the request's query parameters.
func (q Request) Query() url.Values {
	u, err := url.ParseRequestURI(q.URI)
	if err != nil {
		return url.Values{}
	}
	return u.Query()
}

func (q Request) ok() bool { return q.Status >= 200 && q.Status < 300 }

func (q Request) syncToken() string {
	if q.Method != "GET" || q.Path() != "/v2/" {
		return ""
	}
	return q.Query().Get(syncParam)
}

// blobUploadPath matches /v2/NAME/blobs/uploads/ and /v2/NAME/blobs/uploads/UUID.
var blobUploadPath = regexp.MustCompile(`^/v2/(.+)/blobs/uploads/([^/]*)$`)

// manifestPath matches /v2/NAME/manifests/REFERENCE.
var manifestPath = regexp.MustCompile(`^/v2/(.+)/manifests/([^/]+)$`)

// BlobUpload returns the repository and digest of a completed blob upload:
// the closing PUT of a chunked upload, or a monolithic POST with a digest.
// A cross-repository mount is not an upload (see Mount).
func (q Request) BlobUpload() (repo, digest string, ok bool) {
	m := blobUploadPath.FindStringSubmatch(q.Path())
	if m == nil || !q.ok() {
		return "", "", false
	}
	query := q.Query()
	switch {
	case q.Method == "PUT" && m[2] != "":
	case q.Method == "POST" && m[2] == "" && query.Get("digest") != "" && query.Get("mount") == "":
	default:
		return "", "", false
	}
	return m[1], query.Get("digest"), true
}

// Mount returns the repository and digest of a successful cross-repository
// blob mount (POST ...?mount=DIGEST&from=REPO answered 201).
func (q Request) Mount() (repo, digest string, ok bool) {
	m := blobUploadPath.FindStringSubmatch(q.Path())
	if m == nil || q.Method != "POST" || q.Status != 201 || m[2] != "" {
		return "", "", false
	}
	d := q.Query().Get("mount")
	return m[1], d, d != ""
}

// ManifestPut returns the repository and reference of a successful
// manifest PUT.
func (q Request) ManifestPut() (repo, ref string, ok bool) {
	m := manifestPath.FindStringSubmatch(q.Path())
	if m == nil || q.Method != "PUT" || !q.ok() {
		return "", "", false
	}
	return m[1], m[2], true
}

// BlobUploads returns the digests of the blobs uploaded in reqs, in order.
func BlobUploads(reqs []Request) []string {
	var out []string
	for _, q := range reqs {
		if _, d, ok := q.BlobUpload(); ok {
			out = append(out, d)
		}
	}
	return out
}

// Mounts returns the digests of the blobs mounted from another repository
// in reqs, in order.
func Mounts(reqs []Request) []string {
	var out []string
	for _, q := range reqs {
		if _, d, ok := q.Mount(); ok {
			out = append(out, d)
		}
	}
	return out
}

// ManifestPuts returns REPO:REF for each manifest put in reqs, in order.
func ManifestPuts(reqs []Request) []string {
	var out []string
	for _, q := range reqs {
		if repo, ref, ok := q.ManifestPut(); ok {
			out = append(out, repo+":"+ref)
		}
	}
	return out
}

// Summary renders reqs one per line as METHOD URI STATUS, for failure
// messages.
func Summary(reqs []Request) string {
	var sb strings.Builder
	for _, q := range reqs {
		sb.WriteString(q.Method + " " + q.URI + " " + strconv.Itoa(q.Status) + "\n")
	}
	return sb.String()
}
