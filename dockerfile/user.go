package dockerfile

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// owner resolves "user[:group]" (names or numbers) against the stage's
// /etc/passwd and /etc/group. A user without a group takes the user's
// primary group when named, else the same number as the user, as Docker
// does.
func (st *stage) owner(ctx context.Context, spec string) (uid, gid int, err error) {
	user, group, hasGroup := strings.Cut(spec, ":")
	uid, uidErr := strconv.Atoi(user)
	gid, gidErr := strconv.Atoi(group)
	if uidErr == nil && (!hasGroup || gidErr == nil) {
		if !hasGroup {
			gid = uid
		}
		return uid, gid, nil
	}
	fsys, err := st.view(ctx)
	if err != nil {
		return 0, 0, err
	}
	if uidErr != nil {
		entry, ok := lookupDB(fsys, "etc/passwd", user)
		if !ok {
			return 0, 0, fmt.Errorf("user %q is not in the image's /etc/passwd", user)
		}
		if uid, err = strconv.Atoi(entry[2]); err != nil {
			return 0, 0, fmt.Errorf("user %q has uid %q in /etc/passwd", user, entry[2])
		}
		if !hasGroup {
			if gid, err = strconv.Atoi(entry[3]); err != nil {
				return 0, 0, fmt.Errorf("user %q has gid %q in /etc/passwd", user, entry[3])
			}
			return uid, gid, nil
		}
	} else if !hasGroup {
		return uid, uid, nil
	}
	if gidErr != nil {
		entry, ok := lookupDB(fsys, "etc/group", group)
		if !ok {
			return 0, 0, fmt.Errorf("group %q is not in the image's /etc/group", group)
		}
		if gid, err = strconv.Atoi(entry[2]); err != nil {
			return 0, 0, fmt.Errorf("group %q has gid %q in /etc/group", group, entry[2])
		}
	}
	return uid, gid, nil
}

// lookupDB finds name in a colon-separated database such as /etc/passwd.
func lookupDB(fsys *stageFS, file, name string) ([]string, bool) {
	b, ok := fsys.read(file)
	if !ok {
		return nil, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Split(line, ":")
		if len(fields) >= 4 && fields[0] == name {
			return fields, true
		}
	}
	return nil, false
}
