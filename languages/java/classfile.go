package java

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
)

// Constant pool tags of the class file format (JVMS §4.4).
const (
	cpUtf8               = 1
	cpInteger            = 3
	cpFloat              = 4
	cpLong               = 5
	cpDouble             = 6
	cpClass              = 7
	cpString             = 8
	cpFieldref           = 9
	cpMethodref          = 10
	cpInterfaceMethodref = 11
	cpNameAndType        = 12
	cpMethodHandle       = 15
	cpMethodType         = 16
	cpDynamic            = 17
	cpInvokeDynamic      = 18
	cpModule             = 19
	cpPackage            = 20
)

var errClassFormat = errors.New("not a class file")

// classReferences returns the names a class file can depend on: the
// UTF-8 constants of its pool but for those only string literals use,
// sorted. Class names, descriptors and signatures are all UTF-8 constants,
// so two class files with the same references depend on the same classes,
// whatever their code and literals: an edit of a string or of a method's
// body leaves them alone, and jdeps need not run again.
func classReferences(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	refs, err := parseReferences(data)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return refs, nil
}

func parseReferences(data []byte) ([]string, error) {
	r := classReader{data: data}
	if r.u4() != 0xCAFEBABE {
		return nil, errClassFormat
	}
	r.skip(4) // minor and major version
	count := int(r.u2())
	utf8 := make(map[int]string)
	literal := make(map[int]bool) // UTF-8 constants string literals use
	other := make(map[int]bool)   // and those anything else uses
	for i := 1; i < count && r.err == nil; i++ {
		switch tag := r.u1(); tag {
		case cpUtf8:
			n := int(r.u2())
			utf8[i] = string(r.bytes(n))
		case cpString:
			literal[int(r.u2())] = true
		case cpClass, cpMethodType, cpModule, cpPackage:
			other[int(r.u2())] = true
		case cpNameAndType:
			other[int(r.u2())] = true
			other[int(r.u2())] = true
		case cpInteger, cpFloat, cpFieldref, cpMethodref, cpInterfaceMethodref, cpDynamic, cpInvokeDynamic:
			r.skip(4)
		case cpLong, cpDouble:
			r.skip(8)
			i++ // they take two slots
		case cpMethodHandle:
			r.skip(3)
		default:
			return nil, fmt.Errorf("%w: constant pool tag %d", errClassFormat, tag)
		}
	}
	// Fields and methods name their descriptors directly.
	r.skip(6) // access flags, this class, super class
	r.skip(2 * int(r.u2()))
	for range 2 { // fields, then methods
		for n := int(r.u2()); n > 0 && r.err == nil; n-- {
			r.skip(2)
			other[int(r.u2())] = true
			other[int(r.u2())] = true
			for a := int(r.u2()); a > 0 && r.err == nil; a-- {
				r.skip(2)
				r.skip(int(r.u4()))
			}
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	var refs []string
	for i, s := range utf8 {
		if !literal[i] || other[i] {
			refs = append(refs, s)
		}
	}
	sort.Strings(refs)
	return refs, nil
}

// classReader reads big-endian class file data; the first overrun sets
// err and every later read returns zeros.
type classReader struct {
	data []byte
	off  int
	err  error
}

func (r *classReader) bytes(n int) []byte {
	if r.err != nil || n < 0 || r.off+n > len(r.data) {
		if r.err == nil {
			r.err = fmt.Errorf("%w: truncated at byte %d", errClassFormat, r.off)
		}
		return nil
	}
	b := r.data[r.off : r.off+n]
	r.off += n
	return b
}

func (r *classReader) skip(n int) { r.bytes(n) }

func (r *classReader) u1() byte {
	if b := r.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *classReader) u2() uint16 {
	if b := r.bytes(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *classReader) u4() uint32 {
	if b := r.bytes(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}
