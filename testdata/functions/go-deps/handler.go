package function

import (
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
)

// Handle answers with a name-based UUID, proving the module dependency is
// compiled in; /slow waits before answering, for drain tests.
func Handle(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/slow" {
		time.Sleep(2 * time.Second)
		fmt.Fprintln(w, "slow done")
		return
	}
	fmt.Fprintf(w, "uuid %s\n", uuid.NewSHA1(uuid.NameSpaceURL, []byte("kiln")))
}
