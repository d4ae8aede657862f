// Command termination writes its arguments, joined by spaces, to the
// container's termination log and to stdout: the cluster tests build it
// into an image with kiln and read the message back from the pod's status.
package main

import (
	"fmt"
	"os"
	"strings"
)

func main() {
	msg := strings.Join(os.Args[1:], " ")
	fmt.Println(msg)
	if err := os.WriteFile("/dev/termination-log", []byte(msg), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
