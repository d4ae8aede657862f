// Package project is kiln's workflow as a library: a stack file (or one
// handler folder) becomes build targets, targets become images through the
// builder and a publisher, and images are deployed to an OpenFaaS gateway,
// rendered as manifests, or served by a local gateway.
//
//	p, err := project.New(cacheDir, project.WithEnv(os.Getenv), project.WithProgress(render))
//	st, err := project.LoadStack(ctx, sel, os.Getenv)
//	targets, err := p.StackTargets(ctx, st, settings)
//	results, err := p.Build(ctx, targets, project.ToLocalStore())
//	err = p.Deploy(ctx, st, st.Names, project.Images(results), deploySettings)
//
// The CLI, the in-cluster executor and the console all call it. It never
// prints: progress goes out as Events to the callback given WithProgress,
// and mistakes in flags are usage errors (internal/usage) naming the flag.
// Flag tables shared by several commands live here too (flags.go), so a
// command adds them with one call.
package project
