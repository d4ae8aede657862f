package debian

import (
	"fmt"
	"sort"

	"pault.ag/go/debian/dependency"
	"pault.ag/go/debian/version"
)

// Request asks for one package.
type Request struct {
	Name string
	// Depends also asks for the package's Depends and Pre-Depends,
	// recursively. Recommends and Suggests are never followed.
	Depends bool
}

// Resolve returns the packages requests ask for, plus the dependency
// closure of those that ask for it, sorted by name. A dependency on an
// excluded package counts as met, which is how a recipe leaves out what a
// container does not need (debconf, an init system). Among alternatives
// ("a | b") the first that is already chosen wins, then the first the
// index can satisfy; a virtual package is satisfied by its providers in
// name order.
func (ix *Index) Resolve(requests []Request, exclude []string) ([]Package, error) {
	r := resolver{ix: ix, selected: make(map[string]Package), excluded: make(map[string]bool)}
	for _, name := range exclude {
		r.excluded[name] = true
	}
	var queue []Package
	for _, req := range requests {
		p, err := ix.Package(req.Name)
		if err != nil {
			return nil, err
		}
		r.selected[p.Name] = p
		if req.Depends {
			queue = append(queue, p)
		}
	}
	expanded := make(map[string]bool)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if expanded[p.Name] {
			continue
		}
		expanded[p.Name] = true
		for _, field := range []string{p.PreDepends, p.Depends} {
			if field == "" {
				continue
			}
			dep, err := dependency.Parse(field)
			if err != nil {
				return nil, fmt.Errorf("parsing the dependencies of %s: %w", p, err)
			}
			for _, rel := range dep.Relations {
				choice, ok := r.satisfy(rel)
				if !ok {
					return nil, &UnsatisfiableError{Package: p.Name, Relation: rel.String(), Suites: ix.Suites(), Arch: ix.arch}
				}
				if choice != nil {
					r.selected[choice.Name] = *choice
					queue = append(queue, *choice)
				}
			}
		}
	}
	out := make([]Package, 0, len(r.selected))
	for _, p := range r.selected {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

type resolver struct {
	ix       *Index
	selected map[string]Package
	excluded map[string]bool
	// providers maps a virtual package to what provides it, built on first
	// use since most closures never need it.
	providers map[string][]provider
}

type provider struct {
	name    string
	version *version.Version // nil for an unversioned Provides
}

// satisfy returns the package that meets rel, or nil and true when rel is
// met by an exclusion, or false when nothing meets it.
func (r *resolver) satisfy(rel dependency.Relation) (*Package, bool) {
	for _, poss := range rel.Possibilities {
		if r.excluded[poss.Name] {
			return nil, true
		}
	}
	// Prefer what is already chosen, so alternatives do not pull in a
	// second implementation of the same thing.
	for _, poss := range rel.Possibilities {
		if p, ok := r.find(poss, true); ok {
			return &p, true
		}
	}
	for _, poss := range rel.Possibilities {
		if p, ok := r.find(poss, false); ok {
			return &p, true
		}
	}
	return nil, false
}

// find looks for a package meeting poss, among the chosen packages only
// when chosen is true, else in the whole index.
func (r *resolver) find(poss dependency.Possibility, chosen bool) (Package, bool) {
	candidates := r.ix.packages
	if chosen {
		candidates = r.selected
	}
	if p, ok := candidates[poss.Name]; ok && !r.excluded[p.Name] {
		if poss.Version == nil || poss.Version.SatisfiedBy(r.ix.parsed[p.Name]) {
			return p, true
		}
	}
	for _, prov := range r.providersOf(poss.Name) {
		p, ok := candidates[prov.name]
		if !ok || r.excluded[prov.name] {
			continue
		}
		// Policy 7.5: a versioned dependency is met only by a versioned
		// Provides.
		if poss.Version != nil && (prov.version == nil || !poss.Version.SatisfiedBy(*prov.version)) {
			continue
		}
		return p, true
	}
	return Package{}, false
}

func (r *resolver) providersOf(name string) []provider {
	if r.providers == nil {
		r.providers = make(map[string][]provider)
		for _, p := range r.ix.packages {
			if p.Provides == "" {
				continue
			}
			dep, err := dependency.Parse(p.Provides)
			if err != nil {
				continue // a broken Provides provides nothing
			}
			for _, rel := range dep.Relations {
				for _, poss := range rel.Possibilities {
					prov := provider{name: p.Name}
					if poss.Version != nil && poss.Version.Operator == "=" {
						if v, err := version.Parse(poss.Version.Number); err == nil {
							prov.version = &v
						}
					}
					r.providers[poss.Name] = append(r.providers[poss.Name], prov)
				}
			}
		}
		for _, provs := range r.providers {
			sort.Slice(provs, func(i, j int) bool { return provs[i].name < provs[j].name })
		}
	}
	return r.providers[name]
}
