package run

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
)

// subIDs are the subordinate id ranges of the user running kiln, which a
// step without root maps into its user namespace (with the setuid helpers
// newuidmap and newgidmap, from shadow's uidmap package), so that its
// container has a root and the other users and groups that apt-get and
// chown need.
type subIDs struct {
	uid, gid  int
	uidStart  int
	uidCount  int
	gidStart  int
	gidCount  int
	newuidmap string
	newgidmap string
	user      string
}

// lookupSubIDs finds the caller's ranges in subuid and subgid
// (/etc/subuid, /etc/subgid) and the helpers.
func lookupSubIDs(subuid, subgid string) (*subIDs, error) {
	ids := &subIDs{uid: os.Getuid(), gid: os.Getgid()}
	name := strconv.Itoa(ids.uid)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	ids.user = name
	var err1, err2 error
	ids.uidStart, ids.uidCount, err1 = subIDRange(subuid, name, ids.uid)
	ids.gidStart, ids.gidCount, err2 = subIDRange(subgid, name, ids.uid)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	if ids.uidCount == 0 || ids.gidCount == 0 {
		return nil, fmt.Errorf("RUN without root needs subordinate ids for user %s in %s and %s: as root, run `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s`", name, subuid, subgid, name)
	}
	var err error
	if ids.newuidmap, err = exec.LookPath("newuidmap"); err != nil {
		return nil, fmt.Errorf("RUN without root needs newuidmap and newgidmap (Debian package uidmap): %w", err)
	}
	if ids.newgidmap, err = exec.LookPath("newgidmap"); err != nil {
		return nil, fmt.Errorf("RUN without root needs newuidmap and newgidmap (Debian package uidmap): %w", err)
	}
	return ids, nil
}

// subIDRange returns the first range of file for the user name (or uid),
// at most idRange-1 ids, which become the container's ids from 1.
func subIDRange(file, name string, uid int) (start, count int, err error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("reading subordinate ids: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		parts := strings.Split(strings.TrimSpace(s.Text()), ":")
		if len(parts) != 3 || parts[0] != name && parts[0] != strconv.Itoa(uid) {
			continue
		}
		start, err1 := strconv.Atoi(parts[1])
		count, err2 := strconv.Atoi(parts[2])
		if err1 != nil || err2 != nil || start <= 0 || count <= 0 {
			continue
		}
		return start, min(count, idRange-1), nil
	}
	return 0, 0, s.Err()
}

// mapInto maps the user namespace of process pid: the caller as root, the
// subordinate ranges as ids 1 and up.
func (ids *subIDs) mapInto(pid int) error {
	p := strconv.Itoa(pid)
	for _, c := range []struct {
		bin, kind  string
		own, start int
		count      int
	}{{ids.newuidmap, "uid", ids.uid, ids.uidStart, ids.uidCount}, {ids.newgidmap, "gid", ids.gid, ids.gidStart, ids.gidCount}} {
		out, err := exec.Command(c.bin, p,
			"0", strconv.Itoa(c.own), "1",
			"1", strconv.Itoa(c.start), strconv.Itoa(c.count)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("mapping the subordinate %ss of %s (%s): %w: %s", c.kind, ids.user, c.bin, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}
