package executor

import (
	"bufio"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// fromRegistries lists the registries the FROM lines of the Dockerfile
// at path name literally, for --insecure-pull: a FROM an ARG names, or a
// stage's name, names none.
func fromRegistries(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var hosts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || !strings.EqualFold(fields[0], "FROM") {
			continue
		}
		image := fields[1]
		if strings.HasPrefix(image, "--") && len(fields) > 2 {
			image = fields[2] // FROM --platform=... IMAGE
		}
		if strings.Contains(image, "$") || !strings.ContainsAny(image, "./:") {
			continue
		}
		if ref, err := name.ParseReference(image); err == nil {
			hosts = append(hosts, ref.Context().RegistryStr())
		}
	}
	return hosts
}
