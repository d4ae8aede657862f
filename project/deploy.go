package project

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kiln-build/kiln/deploy"
	"github.com/kiln-build/kiln/imagestore"
	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/languages/packs"
	"github.com/kiln-build/kiln/publish"
)

// DeploySettings are what a deploy sends beside the stack: faas-cli's
// deploy flags.
type DeploySettings struct {
	Gateway, Token, Namespace string
	Env, Labels, Annotations  map[string]string
	Secrets, Constraints      []string
	ReadOnly, TLSNoVerify     bool
	Timeout                   time.Duration
	Mode                      deploy.Mode
	// ReadTemplate reads fprocess from ./template/<lang>/template.yml when
	// the stack and the image set none.
	ReadTemplate bool
	Network      string
}

// Deployer makes a set of a stack's functions live with the given images.
type Deployer interface {
	Deploy(ctx context.Context, names []string, images map[string]Image) error
}

// Images maps built results to what a deploy sends of them.
func Images(results []Result) map[string]Image {
	out := map[string]Image{}
	for _, r := range results {
		out[r.Name] = Image{Ref: r.Image, FProcess: r.FProcess}
	}
	return out
}

// WithStackImages adds to images every selected function that has none
// (skip_build, no lang) under the stack's image name.
func WithStackImages(ctx context.Context, st *Stack, images map[string]Image) error {
	for _, n := range st.Names {
		if _, ok := images[n]; ok {
			continue
		}
		image, err := st.Image(ctx, n)
		if err != nil {
			return err
		}
		images[n] = Image{Ref: image}
	}
	return nil
}

// FindImages finds each selected function's image by digest: in the
// registry, else in the local image store. skip_build functions keep
// their tag.
func (p *Project) FindImages(ctx context.Context, st *Stack, insecure []string) (map[string]Image, error) {
	out := map[string]Image{}
	for _, n := range st.Names {
		fn := st.Functions[n]
		image, err := st.Image(ctx, n)
		if err != nil {
			return nil, err
		}
		if fn.SkipBuild {
			out[n] = Image{Ref: image}
			continue
		}
		ref, err := publish.ParseReference(image, insecure)
		if err != nil {
			return nil, st.FuncError(fn, "image", "%v", err)
		}
		img, err := p.images.Find(ctx, image, append(p.findOptions(), imagestore.RegistryFirst(), imagestore.WithInsecureRegistries(insecure))...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		im, err := Describe(RepoAsNamed(image, ref), img)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		out[n] = im
	}
	return out, nil
}

// Push pushes the selected functions' images from the local image store
// to their registries.
func (p *Project) Push(ctx context.Context, st *Stack, insecure []string) ([]Result, error) {
	reg := p.registry()
	var results []Result
	for _, n := range st.Names {
		fn := st.Functions[n]
		if fn.SkipBuild {
			continue
		}
		if !strings.Contains(fn.Image, "/") {
			return nil, st.FuncError(fn, "image", "%q names no registry or owner; push needs one, e.g. ghcr.io/me/%s", fn.Image, fn.Image)
		}
		image, err := st.Image(ctx, n)
		if err != nil {
			return nil, err
		}
		ref, err := publish.ParseReference(image, insecure)
		if err != nil {
			return nil, st.FuncError(fn, "image", "%v", err)
		}
		img, err := p.images.Lookup(ref)
		if err != nil {
			return nil, fmt.Errorf("%s: %w (build it first: kiln build)", n, err)
		}
		dref, err := reg.Publish(ctx, img, ref)
		if err != nil {
			return nil, fmt.Errorf("pushing %s: %w", n, err)
		}
		results = append(results, Result{Name: n, Image: RepoAsNamed(image, ref) + "@" + dref.DigestStr(), Digest: dref.DigestStr(), Output: "registry"})
	}
	return results, nil
}

// remote deploys to an OpenFaaS gateway.
type remote struct {
	p      *Project
	st     *Stack
	ds     DeploySettings
	client *deploy.Client
}

// Remote returns the deployer to the OpenFaaS gateway of ds, the stack
// and $OPENFAAS_URL, with faas-cli's credentials.
func (p *Project) Remote(st *Stack, ds DeploySettings) (Deployer, error) {
	gw := deploy.GatewayURL(ds.Gateway, st.Provider.Gateway, p.opts.getenv("OPENFAAS_URL"))
	dir, err := deploy.ConfigDir(p.opts.getenv)
	if err != nil {
		return nil, err
	}
	auth, err := deploy.LookupAuth(dir, gw, ds.Token)
	if err != nil {
		return nil, err
	}
	opts := []deploy.Option{deploy.WithAuth(auth), deploy.WithTimeout(ds.Timeout), deploy.WithUserAgent("kiln/" + p.opts.version), deploy.WithMode(ds.Mode)}
	if ds.TLSNoVerify {
		opts = append(opts, deploy.WithTLSNoVerify())
	}
	c, err := deploy.NewClient(gw, opts...)
	if err != nil {
		return nil, usage.Wrap(err)
	}
	return &remote{p: p, st: st, ds: ds, client: c}, nil
}

// Deploy implements Deployer: every function is tried, and the errors
// reported together.
func (r *remote) Deploy(ctx context.Context, names []string, images map[string]Image) error {
	deps, err := Deployments(r.st, names, images, r.ds)
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range deps {
		code, err := r.client.Deploy(ctx, d)
		if err != nil {
			errs = append(errs, fmt.Errorf("deploying %s: %w", d.Service, err))
			continue
		}
		r.p.emit(Deployed{Function: d.Service, Image: d.Image, Code: code, URL: r.client.FunctionURL(d.Service, d.Namespace)})
	}
	return errors.Join(errs...)
}

// Deployments returns what is deployed of each named function, in the
// order of names.
func Deployments(st *Stack, names []string, images map[string]Image, ds DeploySettings) ([]*deploy.Deployment, error) {
	o := deploy.Overrides{Secrets: ds.Secrets, Constraints: ds.Constraints, Namespace: ds.Namespace, ReadOnly: ds.ReadOnly, Network: ds.Network, Env: ds.Env, Labels: ds.Labels, Annotations: ds.Annotations}
	templates := "template"
	if !ds.ReadTemplate {
		templates = ""
	}
	var deps []*deploy.Deployment
	for _, n := range names {
		fn := st.Functions[n]
		fp, err := deploy.FProcess(fn, images[n].FProcess, templates, packs.FProcess)
		if errors.Is(err, deploy.ErrNoFProcess) {
			return nil, st.FuncError(fn, "fprocess", "%v", err)
		}
		if err != nil {
			return nil, err
		}
		d, err := deploy.NewDeployment(st.File, fn, images[n].Ref, fp, o)
		if err != nil {
			return nil, err
		}
		deps = append(deps, d)
	}
	return deps, nil
}

// WriteManifests renders the named functions' manifests, kind "k8s"
// (Deployment + Service) or "crd" (openfaas.com/v1 Function), then writes
// them to w: nothing when one cannot be rendered.
func WriteManifests(w io.Writer, kind string, st *Stack, names []string, images map[string]Image, ds DeploySettings) error {
	if kind != "k8s" && kind != "crd" {
		return usage.Errorf("--output %q: want k8s or crd", kind)
	}
	deps, err := Deployments(st, names, images, ds)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	for i, d := range deps {
		var b []byte
		var err error
		if kind == "crd" {
			b, err = deploy.FunctionCRD(d)
		} else {
			b, err = deploy.KubernetesManifests(d)
		}
		var fe *deploy.FieldError
		if errors.As(err, &fe) {
			fn := st.Functions[d.Service]
			if fe.Field == "constraints" && fn.Constraints == nil {
				return usage.Errorf("--constraint %q: %s", fe.Value, fe.Msg)
			}
			return st.FuncError(fn, fe.Field, "%q: %s", fe.Value, fe.Msg)
		}
		if err != nil {
			return fmt.Errorf("rendering %s: %w", d.Service, err)
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(b)
	}
	_, err = w.Write(out.Bytes())
	return err
}
