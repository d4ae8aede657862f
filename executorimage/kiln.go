package executorimage

import (
	"debug/elf"
	"fmt"
)

// CheckKiln returns an error unless the file at path is a static Linux
// executable for the Debian architecture arch, as `make build` makes
// kiln (CGO_ENABLED=0): the images have no dynamic loader for kiln.
func CheckKiln(path, arch string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s is not a Linux executable: %w", path, err)
	}
	defer f.Close()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if f.Machine != want {
		return fmt.Errorf("%s is a kiln for %s, not %s", path, f.Machine, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is linked dynamically: build it with CGO_ENABLED=0, as make build does", path)
		}
	}
	return nil
}
