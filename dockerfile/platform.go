package dockerfile

import (
	"fmt"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// parsePlatform reads os/arch[/variant], as FROM --platform writes it;
// an OS alone ("linux") takes the architecture of def, as BuildKit takes
// its own.
func parsePlatform(s string, def v1.Platform) (v1.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) == 1 && parts[0] != "" {
		return v1.Platform{OS: parts[0], Architecture: def.Architecture, Variant: def.Variant}, nil
	}
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return v1.Platform{}, fmt.Errorf("%q is not os[/arch[/variant]]", s)
	}
	p := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

func formatPlatform(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// platformArgs are the ARGs BuildKit defines in the global scope.
func platformArgs(target, build v1.Platform) []string {
	return []string{
		"BUILDPLATFORM=" + formatPlatform(build),
		"BUILDOS=" + build.OS,
		"BUILDARCH=" + build.Architecture,
		"BUILDVARIANT=" + build.Variant,
		"TARGETPLATFORM=" + formatPlatform(target),
		"TARGETOS=" + target.OS,
		"TARGETARCH=" + target.Architecture,
		"TARGETVARIANT=" + target.Variant,
	}
}

// signals are the Linux signal names STOPSIGNAL accepts.
var signals = map[string]bool{
	"ABRT": true, "ALRM": true, "BUS": true, "CHLD": true, "CONT": true, "FPE": true, "HUP": true,
	"ILL": true, "INT": true, "IO": true, "IOT": true, "KILL": true, "PIPE": true, "POLL": true,
	"PROF": true, "PWR": true, "QUIT": true, "SEGV": true, "STKFLT": true, "STOP": true, "SYS": true,
	"TERM": true, "TRAP": true, "TSTP": true, "TTIN": true, "TTOU": true, "URG": true, "USR1": true,
	"USR2": true, "VTALRM": true, "WINCH": true, "XCPU": true, "XFSZ": true,
}

// validSignal accepts a number, a name with or without SIG, or RTMIN+n.
func validSignal(s string) bool {
	if n, err := strconv.Atoi(s); err == nil {
		return n > 0 && n <= 64
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if rest, ok := strings.CutPrefix(name, "RTMIN+"); ok {
		n, err := strconv.Atoi(rest)
		return err == nil && n >= 0 && n <= 30
	}
	return signals[name] || name == "RTMIN" || name == "RTMAX"
}
