package languages

import (
	"context"

	"github.com/kiln-build/kiln/layers"
)

// Deb is a Debian package as a Debian source lists it: named, versioned,
// and pinned by the size and SHA256 of its .deb.
type Deb struct {
	Name         string
	Version      string
	Architecture string
	// Suite is the suite whose index lists the package.
	Suite string
	// Filename is the .deb's path in the archive, Size and SHA256 its
	// size and checksum.
	Filename string
	Size     int64
	SHA256   string
	// Unpacker names the version of the source's Unpack: the files it
	// gives for a package depend on SHA256 and Unpacker only, so a cache
	// key over unpacked files takes both.
	Unpacker string
}

// Debian is what a pack needs of Debian's archive for a runtime base (a
// JDK for another platform, the standard library a base ships): the
// packages the base's lock pins, the versions its suites offer now, and
// their files. The wiring gives packs kiln's runtime bases
// (runtime-images/bases); a pack never imports them.
type Debian interface {
	// Locked returns the packages the lock of the runtime base called
	// base pins for the Debian architecture arch, sorted by name.
	Locked(base, arch string) ([]Deb, error)
	// Versions returns the package called name as each suite of the
	// runtime base's offers it for arch, from the suites' signed indexes,
	// in the base's suite order; a suite without it is left out.
	Versions(ctx context.Context, base, arch, name string) ([]Deb, error)
	// Unpack downloads p, verified against its size and SHA256, and
	// unpacks it into dir, which the caller creates and removes. A
	// regular file's Source points into dir.
	Unpack(ctx context.Context, p Deb, dir string) ([]layers.File, error)
}
