package function

import "fmt"

// Handle answers as the classic go template's scaffold does: the request
// body comes in, the returned string goes out.
func Handle(req []byte) string {
	return fmt.Sprintf("Hello, Go. You said: %s", string(req))
}
