package cache

import (
	"fmt"
	"path/filepath"
)

// Kind is one family of entries in the store: where they live under the
// cache directory, what an entry is, and how Prune treats it.
type Kind int

// The kinds, in the order Usage lists them. Every path under the cache
// directory belongs to exactly one of them.
const (
	// Layers are built layers: layers/v1/keys/<step key>.json names a
	// compressed blob in layers/v1/blobs/sha256/ (Get, Put, List).
	Layers Kind = iota + 1
	// JavaOutputs are the Java pack's resolved dependencies, compiled
	// classes, jdeps reports, target JDK modules and model jars:
	// directories java/<step>/<key> (Tree).
	JavaOutputs
	// NodeModules are installed node_modules: directories
	// node/modules/<key> (Tree).
	NodeModules
	// NodeRuntimes are verified Node tarballs: node/sha512/<sha512>.tgz
	// (File).
	NodeRuntimes
	// GoModules are Go module caches (GOMODCACHE) holding a function's
	// modules, which go build reads instead of downloading them:
	// directories go/modules/<key> (Tree).
	GoModules
	// GoBuildCaches are Go build caches (GOCACHE) warmed by compiling a
	// function's dependencies, which builds copy: directories
	// go/build-cache/<key> (Tree).
	GoBuildCaches
	// DebianFiles are verified .deb packages and Packages indexes:
	// debian/sha256/<sha256><ext> (File).
	DebianFiles
	// Toolchains are verified toolchain downloads, the Go toolchain zips
	// the executor images are made of: toolchains/sha256/<sha256><ext>
	// (File).
	Toolchains
	// RootfsLayers are image layers unpacked for overlayfs:
	// rootfs/layers/<boot id>/<diff id>, never synced to disk and so valid
	// only during the boot that wrote them (Tree).
	RootfsLayers
	// Rootfs are whole images flattened into one tree:
	// rootfs/<manifest digest> (Tree).
	Rootfs
	// MountCaches are the directories of Dockerfile RUN
	// --mount=type=cache: mounts/<key>, made empty once (Tree) and then
	// written by every step that mounts them, as BuildKit's cache mounts
	// are.
	MountCaches
	// Images is the local image store, the OCI layout images/ that
	// `kiln build` without --push writes and `kiln run` reads. An entry
	// is an image its index.json names.
	Images
	// Secrets are the local gateway's secrets, secrets/<name>: state, not
	// a cache, which only Clear removes.
	Secrets
	// Temp holds what is being written (fills, downloads, scratch space of
	// running functions) in tmp/, and what processes that died left there
	// or in the temporary folders of earlier versions.
	Temp
	// Other is whatever else is in the cache directory: counted, so that
	// Usage adds up to the directory's size, and removed only by Clear.
	Other
)

// shape says what an entry of a kind is.
type shape int

const (
	shapeLayers  shape = iota // key files and blobs
	shapeDir                  // a directory made by Tree
	shapeFile                 // a verified file made by File
	shapeImages               // an OCI layout
	shapeSecrets              // files the gateway writes
	shapeTemp                 // anything being written, or left over
	shapeOther
)

type kindSpec struct {
	name string
	// noun names entries in a sentence: "3 node runtimes".
	noun string
	// dir is the kind's directory, relative to the cache directory;
	// legacy are directories earlier versions used for the same purpose.
	dir    string
	legacy []string
	shape  shape
	// depth is the number of path elements of a key: 2 for java/<step>/<key>.
	depth int
	// private directories are 0700: unpacked images hold setuid binaries
	// owned by root, which other users must not reach.
	private bool
	// volatile entries are not synced to disk before they appear: their
	// directory holds one folder per boot, and only the current boot's is
	// used, since only a crash of the whole machine can lose written data
	// and that changes the boot id.
	volatile bool
}

var kindSpecs = map[Kind]kindSpec{
	Layers:        {name: "layers", noun: "layers", dir: "layers/v1", shape: shapeLayers, depth: 1},
	JavaOutputs:   {name: "java", noun: "java outputs", dir: "java", shape: shapeDir, depth: 2},
	NodeModules:   {name: "node-modules", noun: "node_modules installs", dir: "node/modules", shape: shapeDir, depth: 1},
	NodeRuntimes:  {name: "node-runtimes", noun: "node runtimes", dir: "node/sha512", shape: shapeFile, depth: 1},
	GoModules:     {name: "go-modules", noun: "go module caches", dir: "go/modules", shape: shapeDir, depth: 1},
	GoBuildCaches: {name: "go-build", noun: "go build caches", dir: "go/build-cache", shape: shapeDir, depth: 1},
	DebianFiles:   {name: "debian", noun: "debian files", dir: "debian/sha256", shape: shapeFile, depth: 1},
	Toolchains:    {name: "toolchains", noun: "toolchain downloads", dir: "toolchains/sha256", shape: shapeFile, depth: 1},
	RootfsLayers:  {name: "rootfs-layers", noun: "unpacked layers", dir: "rootfs/layers", shape: shapeDir, depth: 1, private: true, volatile: true},
	Rootfs:        {name: "rootfs", noun: "flattened images", dir: "rootfs", shape: shapeDir, depth: 1, private: true},
	MountCaches:   {name: "mount-caches", noun: "RUN cache mounts", dir: "mounts", shape: shapeDir, depth: 1, private: true},
	Images:        {name: "images", noun: "local images", dir: "images", shape: shapeImages},
	Secrets:       {name: "secrets", noun: "secrets", dir: "secrets", shape: shapeSecrets},
	Temp:          {name: "tmp", noun: "temporary files", dir: "tmp", legacy: []string{"run", "node/tmp", "layers/v1/tmp"}, shape: shapeTemp, private: true},
	Other:         {name: "other", noun: "other files", shape: shapeOther},
}

// Kinds returns every kind, in the order Usage lists them.
func Kinds() []Kind {
	return []Kind{Layers, JavaOutputs, NodeModules, NodeRuntimes, GoModules, GoBuildCaches, DebianFiles, Toolchains, RootfsLayers, Rootfs, MountCaches, Images, Secrets, Temp, Other}
}

func (k Kind) spec() kindSpec { return kindSpecs[k] }

// String returns the kind's name, as `kiln cache ls` shows it.
func (k Kind) String() string {
	if s, ok := kindSpecs[k]; ok {
		return s.name
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Noun names the kind's entries in a sentence: "node runtimes".
func (k Kind) Noun() string { return k.spec().noun }

// MarshalText writes the kind's name.
func (k Kind) MarshalText() ([]byte, error) {
	if _, ok := kindSpecs[k]; !ok {
		return nil, fmt.Errorf("unknown cache kind %d", int(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText reads a kind's name.
func (k *Kind) UnmarshalText(b []byte) error {
	for kind, s := range kindSpecs {
		if s.name == string(b) {
			*k = kind
			return nil
		}
	}
	return fmt.Errorf("unknown cache kind %q", b)
}

// claimed maps each directory a kind owns, relative to the cache
// directory, to that kind. A directory inside another kind's belongs to
// the inner kind (rootfs/layers inside rootfs).
func claimed() map[string]Kind {
	m := map[string]Kind{}
	for k, s := range kindSpecs {
		if s.dir != "" {
			m[filepath.FromSlash(s.dir)] = k
		}
		for _, d := range s.legacy {
			m[filepath.FromSlash(d)] = k
		}
	}
	return m
}
