package job

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kiln-build/kiln/buildcontext"
	"github.com/kiln-build/kiln/deploy"
	"github.com/kiln-build/kiln/project"
)

// Options are how Stack runs, beside the Jobs' settings.
type Options struct {
	// Parallel is how many Jobs run at once (at least one).
	Parallel int
	// Client talks to the cluster; Render needs none.
	Client Client
	// Logs receives the pods' log lines, prefixed with their function.
	Logs io.Writer
	// Render, when set, receives the Jobs as YAML documents instead of
	// their being created (kiln job --output yaml).
	Render io.Writer
	// Deploy, when set, deploys the stack's selected functions by digest
	// once every build succeeded.
	Deploy project.Deployer
}

// Result is a function's image built in the cluster.
type Result struct {
	Name string `json:"name"`
	// Image is NAME@DIGEST.
	Image  string `json:"image"`
	Digest string `json:"digest"`
	// Context is the build context the Job fetched, by digest.
	Context string `json:"context"`
}

// Stack builds the selected functions of st in the cluster, a Job each,
// and returns their images in the stack's order. The failed builds are
// reported together, each a *Failure on a line of its own.
func Stack(ctx context.Context, p *project.Project, st *project.Stack, bs project.BuildSettings, s Settings, o Options) ([]Result, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	targets, err := p.StackTargets(ctx, st, bs)
	if err != nil {
		return nil, err
	}
	if len(targets) == 0 {
		return nil, errors.New("no function to build: every selected one has skip_build or no lang")
	}
	builds := make([]Build, len(targets))
	for i, t := range targets {
		if builds[i], err = pushContext(ctx, p, t); err != nil {
			return nil, err
		}
	}
	if o.Render != nil {
		return nil, render(o.Render, builds, s)
	}
	if err := checkSecrets(ctx, o.Client, s); err != nil {
		return nil, err
	}
	results, err := run(ctx, NewRunner(o.Client, o.Logs), builds, targets, s, o.Parallel)
	if err != nil || o.Deploy == nil {
		return results, err
	}
	return results, deployByDigest(ctx, p, st, bs, o.Deploy, results)
}

// pushContext lays out t's build context, packs it and pushes it to the
// tag context-<digest> of the image's repository.
func pushContext(ctx context.Context, p *project.Project, t project.Target) (Build, error) {
	scratch, err := os.MkdirTemp("", "kiln-job-")
	if err != nil {
		return Build{}, err
	}
	defer os.RemoveAll(scratch)
	fn := t.Function
	dir, lang, err := p.BuildContext(t, scratch)
	if err != nil {
		return Build{}, fmt.Errorf("%s: %w", fn.Name, err)
	}
	img, err := buildcontext.Pack(ctx, dir)
	if err != nil {
		return Build{}, fmt.Errorf("%s: packing its build context: %w", fn.Name, err)
	}
	d, err := img.Digest()
	if err != nil {
		return Build{}, fmt.Errorf("%s: packing its build context: %w", fn.Name, err)
	}
	ref := t.Ref.Context().Tag("context-" + d.Hex[:12])
	pushed, err := p.Registry().Publish(ctx, img, ref)
	if err != nil {
		return Build{}, fmt.Errorf("%s: pushing its build context: %w", fn.Name, err)
	}
	args := maps.Clone(fn.BuildArgs)
	// The executor has no ./template to read build options from: it gets
	// the packages they name.
	if len(fn.Packages) > 0 {
		args["ADDITIONAL_PACKAGE"] = strings.Join(fn.Packages, " ")
	}
	return Build{Function: fn.Name, Image: t.Ref.Name(), Context: pushed, Lang: lang, BuildArgs: args}, nil
}

// render writes the Jobs of builds as YAML documents.
func render(w io.Writer, builds []Build, s Settings) error {
	var out bytes.Buffer
	for i, b := range builds {
		j, err := New(b, s)
		if err != nil {
			return err
		}
		y, err := deploy.MarshalManifest(j)
		if err != nil {
			return fmt.Errorf("rendering the job of %s: %w", b.Function, err)
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(y)
	}
	_, err := w.Write(out.Bytes())
	return err
}

// checkSecrets says which Secret the Jobs mount is missing, before a pod
// waits for it until its deadline. A client not allowed to read Secrets
// checks nothing.
func checkSecrets(ctx context.Context, client Client, s Settings) error {
	type ref struct{ flag, name string }
	refs := []ref{{"--docker-config-secret", s.DockerConfigSecret}, {"--image-pull-secret", s.ImagePullSecret}}
	for file, secret := range s.DependencySecrets {
		refs = append(refs, ref{"--dependency-secret " + file, secret})
	}
	for _, r := range refs {
		if r.name == "" {
			continue
		}
		sec, err := client.CoreV1().Secrets(s.Namespace).Get(ctx, r.name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return fmt.Errorf("%s: no Secret %s in namespace %s", r.flag, r.name, s.Namespace)
		case err != nil:
			continue
		}
		key := ""
		switch {
		case r.flag == "--docker-config-secret":
			key = corev1.DockerConfigJsonKey
		case strings.HasPrefix(r.flag, "--dependency-secret"):
			key = strings.TrimPrefix(r.flag, "--dependency-secret ")
		}
		if _, ok := sec.Data[key]; key != "" && !ok {
			return fmt.Errorf("%s: Secret %s/%s has no key %s", r.flag, s.Namespace, r.name, key)
		}
	}
	return nil
}

// run runs the Jobs of builds, parallel at once, and returns the results
// in their order, or every failure.
func run(ctx context.Context, r *Runner, builds []Build, targets []project.Target, s Settings, parallel int) ([]Result, error) {
	results := make([]Result, len(builds))
	errs := make([]error, len(builds))
	queue := make(chan int)
	var wg sync.WaitGroup
	for range min(max(parallel, 1), len(builds)) {
		wg.Go(func() {
			for i := range queue {
				b := builds[i]
				j, err := New(b, s)
				if err != nil {
					errs[i] = err
					continue
				}
				h, err := r.Run(ctx, b.Function, j)
				if err != nil {
					errs[i] = err
					continue
				}
				t := targets[i]
				results[i] = Result{Name: b.Function, Image: project.RepoAsNamed(t.Image, t.Ref) + "@" + h.String(), Digest: h.String(), Context: b.Context.String()}
			}
		})
	}
	for i := range builds {
		queue <- i
	}
	close(queue)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return results, nil
}

// deployByDigest deploys st's selected functions through d, by the digests the
// Jobs reported.
func deployByDigest(ctx context.Context, p *project.Project, st *project.Stack, bs project.BuildSettings, d project.Deployer, results []Result) error {
	images, err := p.FindImages(ctx, st, bs.Insecure)
	if err != nil {
		return err
	}
	for _, r := range results {
		got, want := images[r.Name].Ref, r.Image
		if _, digest, _ := strings.Cut(got, "@"); digest != r.Digest {
			return fmt.Errorf("%s: its tag names %s, not %s which its job built: another push moved it", r.Name, got, want)
		}
	}
	return d.Deploy(ctx, st.Names, images)
}
