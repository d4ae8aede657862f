package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/deploy"
	"github.com/kiln-build/kiln/languages/packs"
	"github.com/kiln-build/kiln/stack"
)

type deployFlags struct {
	gateway, token, namespace, fprocess string
	output                              string
	env, labels, annotations            []string
	secrets, constraints                []string
	readonly, tlsNoVerify               bool
	timeout                             time.Duration
	update, replace, readTemplate       bool
	network                             string
}

func addDeployFlags(fl *pflag.FlagSet, f *deployFlags) {
	fl.StringVarP(&f.gateway, "gateway", "g", deploy.DefaultGateway, "gateway URL (else the stack's provider.gateway, else $OPENFAAS_URL)")
	fl.StringVarP(&f.token, "token", "k", "", "bearer token for the gateway (a basic login in faas-cli's config.yml wins)")
	fl.StringVarP(&f.namespace, "namespace", "n", "", "namespace to deploy to (over the stack's namespace)")
	fl.StringVar(&f.fprocess, "fprocess", "", "fprocess for every function (over the stack's)")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "environment variable KEY=VALUE, over environment and environment_file; repeatable")
	fl.StringArrayVarP(&f.labels, "label", "l", nil, "label KEY=VALUE, over the stack's labels; repeatable")
	fl.StringArrayVar(&f.annotations, "annotation", nil, "annotation KEY=VALUE, over the stack's annotations; repeatable")
	fl.StringArrayVar(&f.secrets, "secret", nil, "secret the function may read; repeatable")
	fl.StringArrayVar(&f.constraints, "constraint", nil, "placement constraint, for functions with no constraints key; repeatable")
	fl.BoolVar(&f.readonly, "readonly", false, "make every function's root filesystem read-only")
	fl.BoolVar(&f.tlsNoVerify, "tls-no-verify", false, "skip the gateway's TLS certificate check")
	fl.DurationVar(&f.timeout, "timeout", 60*time.Second, "timeout of each gateway request")
	fl.BoolVar(&f.update, "update", true, "update a deployed function with PUT, creating it on 404; false: create with POST only")
	fl.BoolVar(&f.replace, "replace", false, "delete the function, then create it (needs --update=false, as in faas-cli)")
	fl.BoolVar(&f.readTemplate, "read-template", true, "read fprocess from ./template/<lang>/template.yml when the stack and the image set none")
	fl.StringVar(&f.network, "network", "", "network sent in the deploy request (deprecated: providers ignore it)")
}

// mode is the deploy.Mode of --update and --replace, which faas-cli
// refuses together.
func (f deployFlags) mode() (deploy.Mode, error) {
	switch {
	case f.update && f.replace:
		return 0, usageError{errors.New("--replace and --update: one of them must be false (--replace --update=false)")}
	case f.replace:
		return deploy.Replace, nil
	case f.update:
		return deploy.Update, nil
	}
	return deploy.Create, nil
}

func newDeployCmd(g *globals) *cobra.Command {
	var sf stackFlags
	var df deployFlags
	var insecure []string
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Deploy a stack file's functions to an OpenFaaS gateway, by image digest",
		Long: `Deploy the functions of a stack file to an OpenFaaS gateway with the REST
calls faas-cli deploy makes (PUT /system/functions, then POST on 404), with
credentials from faas-cli's config.yml ('faas-cli login').

Unlike faas-cli, kiln sends each built image by digest (NAME@sha256:...),
looked up in the registry, else in kiln's local image store, so a redeploy
rolls even when the tag did not change. skip_build functions are sent by
their tag. With --output k8s or crd nothing is deployed: the manifests are
printed instead.`,
		Example: `  kiln deploy -f stack.yml
  kiln deploy --gateway http://127.0.0.1:8080 --filter hello -e debug=true
  kiln deploy --output k8s > functions.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := df.mode(); err != nil {
				return err
			}
			file, names, err := loadStack(cmd, g, sf)
			if err != nil {
				return err
			}
			images, err := lookupImages(cmd.Context(), g, file, names, sf.tag, insecure)
			if err != nil {
				return err
			}
			return deployFunctions(cmd.Context(), g, df, file, names, images)
		},
	}
	fl := cmd.Flags()
	addStackFlags(fl, &sf)
	addDeployFlags(fl, &df)
	fl.StringVar(&df.output, "output", "", `print manifests instead of deploying: "k8s" (Deployment + Service) or "crd" (openfaas.com/v1 Function)`)
	fl.StringSliceVar(&insecure, "insecure-registry", nil, "registry host spoken to over plain HTTP (loopback always is); repeatable")
	return cmd
}

// deployImage is what deploy sends for one function.
type deployImage struct {
	// ref is the image reference: by digest for built images.
	ref string
	// fprocess is the one the image's own config sets, if known.
	fprocess string
}

// lookupImages finds each selected function's image by digest: in the
// registry, else in kiln's local image store. skip_build functions keep
// their tag.
func lookupImages(ctx context.Context, g *globals, sf *stack.File, names []string, tag string, insecure []string) (map[string]deployImage, error) {
	format, _ := stack.ParseTagFormat(tag)
	out := map[string]deployImage{}
	for _, n := range names {
		fn := sf.Functions[n]
		image, err := sf.FunctionImage(ctx, n, format)
		if err != nil {
			return nil, err
		}
		if fn.SkipBuild {
			out[n] = deployImage{ref: image}
			continue
		}
		ref, err := builder.ParseReference(image, insecure)
		if err != nil {
			return nil, sf.FuncError(fn, "image", "%v", err)
		}
		img, err := findImage(ctx, g, ref)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		di, err := describeImage(ref, img)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		out[n] = di
	}
	return out, nil
}

func findImage(ctx context.Context, g *globals, ref name.Reference) (v1.Image, error) {
	img, rerr := remote.Image(ref, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if rerr == nil {
		return img, nil
	}
	store, err := g.store()
	if err != nil {
		return nil, err
	}
	img, err = builder.NewLayout(localImages(store)).Lookup(ref)
	if err != nil {
		return nil, fmt.Errorf("image %s is neither in its registry (%v) nor in kiln's local store: build it first (kiln build --push, or kiln up)", ref, rerr)
	}
	return img, nil
}

// describeImage returns the digest reference and fprocess of img.
func describeImage(ref name.Reference, img v1.Image) (deployImage, error) {
	d, err := img.Digest()
	if err != nil {
		return deployImage{}, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return deployImage{}, fmt.Errorf("reading the config of %s: %w", ref, err)
	}
	fp := ""
	for _, e := range cf.Config.Env {
		if v, ok := strings.CutPrefix(e, "fprocess="); ok {
			fp = v
		}
	}
	return deployImage{ref: ref.Context().Name() + "@" + d.String(), fprocess: fp}, nil
}

// deployFunctions deploys (or, with --output, renders) the named functions
// with the given images.
func deployFunctions(ctx context.Context, g *globals, df deployFlags, sf *stack.File, names []string, images map[string]deployImage) error {
	mode, err := df.mode()
	if err != nil {
		return err
	}
	deps, err := newDeployments(df, sf, names, images)
	if err != nil {
		return err
	}
	switch df.output {
	case "":
	case "k8s", "crd":
		return writeManifests(g.stdout, df.output, sf, deps)
	default:
		return usageError{fmt.Errorf("--output %q: want k8s or crd", df.output)}
	}

	gw := deploy.GatewayURL(df.gateway, sf.Provider.Gateway, g.getenv("OPENFAAS_URL"))
	dir, err := deploy.ConfigDir(g.getenv)
	if err != nil {
		return err
	}
	auth, err := deploy.LookupAuth(dir, gw, df.token)
	if err != nil {
		return err
	}
	opts := []deploy.Option{deploy.WithAuth(auth), deploy.WithTimeout(df.timeout), deploy.WithUserAgent("kiln/" + version), deploy.WithMode(mode)}
	if df.tlsNoVerify {
		opts = append(opts, deploy.WithTLSNoVerify())
	}
	c, err := deploy.NewClient(gw, opts...)
	if err != nil {
		return usageError{err}
	}
	var errs []error
	for _, d := range deps {
		code, err := c.Deploy(ctx, d)
		if err != nil {
			errs = append(errs, fmt.Errorf("deploying %s: %w", d.Service, err))
			continue
		}
		fmt.Fprintf(g.stdout, "Deployed %s (%s). %d %s.\nURL: %s\n", d.Service, d.Image, code, httpStatusText(code), c.FunctionURL(d.Service, d.Namespace))
	}
	return errors.Join(errs...)
}

// newDeployments returns what is deployed of each named function, in the
// order of names.
func newDeployments(df deployFlags, sf *stack.File, names []string, images map[string]deployImage) ([]*deploy.Deployment, error) {
	o, err := overrides(df)
	if err != nil {
		return nil, err
	}
	templates := "template"
	if !df.readTemplate {
		templates = ""
	}
	var deps []*deploy.Deployment
	for _, n := range names {
		fn := sf.Functions[n]
		fp, err := deploy.FProcess(fn, images[n].fprocess, templates, packs.FProcess)
		if errors.Is(err, deploy.ErrNoFProcess) {
			return nil, sf.FuncError(fn, "fprocess", "%v", err)
		}
		if err != nil {
			return nil, err
		}
		d, err := deploy.NewDeployment(sf, fn, images[n].ref, fp, o)
		if err != nil {
			return nil, err
		}
		deps = append(deps, d)
	}
	return deps, nil
}

// overrides turns deploy's flags into deploy.Overrides.
func overrides(df deployFlags) (deploy.Overrides, error) {
	o := deploy.Overrides{Secrets: df.secrets, Constraints: df.constraints, Namespace: df.namespace, FProcess: df.fprocess, ReadOnly: df.readonly, Network: df.network}
	var err error
	if o.Env, err = parseKeyValues("--env", df.env); err != nil {
		return o, err
	}
	if o.Labels, err = parseKeyValues("--label", df.labels); err != nil {
		return o, err
	}
	o.Annotations, err = parseKeyValues("--annotation", df.annotations)
	return o, err
}

func httpStatusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 201:
		return "Created"
	case 202:
		return "Accepted"
	}
	return ""
}

// writeManifests renders every function's manifests, then writes them:
// nothing when one cannot be rendered.
func writeManifests(w io.Writer, kind string, sf *stack.File, deps []*deploy.Deployment) error {
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
			fn := sf.Functions[d.Service]
			if fe.Field == "constraints" && fn.Constraints == nil {
				return usageError{fmt.Errorf("--constraint %q: %s", fe.Value, fe.Msg)}
			}
			return sf.FuncError(fn, fe.Field, "%q: %s", fe.Value, fe.Msg)
		}
		if err != nil {
			return fmt.Errorf("rendering %s: %w", d.Service, err)
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(b)
	}
	_, err := w.Write(out.Bytes())
	return err
}
