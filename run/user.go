package run

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
)

// identity is who the entrypoint runs as.
type identity struct {
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"` // supplementary
	Home   string   `json:"home"`
}

// lookupUser turns the image config's User ("", "uid", "uid:gid", "name",
// "name:group", ...) into numeric ids, reading the image's own /etc/passwd
// and /etc/group, in the image's layers (host paths, top first): names mean
// what the image says they mean, not the host.
func lookupUser(layers []string, user string) (identity, error) {
	id := identity{Home: "/"}
	u, g, hasGroup := strings.Cut(user, ":")
	if u == "" {
		u = "0"
	}
	passwd, err := readDB(layers, "/etc/passwd")
	if err != nil {
		return id, err
	}
	groups, err := readDB(layers, "/etc/group")
	if err != nil {
		return id, err
	}

	// passwd: name:password:uid:gid:gecos:home:shell
	var entry []string
	if n, err := parseID(u); err == nil {
		id.UID = n
		entry = find(passwd, 2, u)
	} else {
		if entry = find(passwd, 0, u); entry == nil {
			return id, fmt.Errorf("user %q: not in the image's /etc/passwd", u)
		}
		if id.UID, err = parseID(entry[2]); err != nil {
			return id, fmt.Errorf("user %q: bad uid in /etc/passwd: %w", u, err)
		}
	}
	if len(entry) >= 6 {
		if id.GID, err = parseID(entry[3]); err != nil {
			return id, fmt.Errorf("user %q: bad gid in /etc/passwd: %w", u, err)
		}
		if entry[5] != "" {
			id.Home = entry[5]
		}
	}

	if hasGroup {
		if n, err := parseID(g); err == nil {
			id.GID = n
		} else {
			e := find(groups, 0, g)
			if e == nil {
				return id, fmt.Errorf("group %q: not in the image's /etc/group", g)
			}
			if id.GID, err = parseID(e[2]); err != nil {
				return id, fmt.Errorf("group %q: bad gid in /etc/group: %w", g, err)
			}
		}
	}

	// group: name:password:gid:member,member
	if entry != nil {
		for _, e := range groups {
			if len(e) < 4 || !slices.Contains(strings.Split(e[3], ","), entry[0]) {
				continue
			}
			if n, err := parseID(e[2]); err == nil && n != id.GID && !slices.Contains(id.Groups, n) {
				id.Groups = append(id.Groups, n)
			}
		}
	}
	return id, nil
}

func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}

// find returns the first entry whose field i is v.
func find(db [][]string, i int, v string) []string {
	for _, e := range db {
		if len(e) > i && e[i] == v {
			return e
		}
	}
	return nil
}

// readDB reads a colon-separated database from the layers; a missing file
// is an empty database, as in images built from scratch.
func readDB(layers []string, name string) ([][]string, error) {
	p, err := resolveInLayers(layers, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the image's %s: %w", name, err)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("reading the image's %s: %w", name, err)
	}
	defer f.Close()
	var db [][]string
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		db = append(db, strings.Split(line, ":"))
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("reading the image's %s: %w", name, err)
	}
	return db, nil
}
