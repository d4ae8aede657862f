package job

import (
	"context"
	"io"
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/project"
)

// Flags are kiln job's flags.
type Flags struct {
	Stack    project.StackFlags
	Registry project.RegistryFlags
	Kube     Kube
	// Settings holds the flags that map one to one onto the Jobs'.
	Settings          Settings
	DependencySecrets []string
	BuildArgs         []string
	Parallel          int
	Deploy            bool
	DeployFlags       project.DeployFlags
	// Output is "yaml" to print the Jobs instead of running them.
	Output string
}

// Add adds the flags to fl. The deploy flags are faas-cli's but
// --namespace, which names the Jobs' namespace here: functions deploy to
// the stack's namespace.
func (f *Flags) Add(fl *pflag.FlagSet) {
	f.Stack.Add(fl)
	f.Registry.Add(fl)
	s := &f.Settings
	fl.StringVar(&f.Kube.Kubeconfig, "kubeconfig", "", "kubeconfig file (default as kubectl: $KUBECONFIG, else ~/.kube/config, else the pod's service account)")
	fl.StringVar(&f.Kube.Context, "context", "", "kubeconfig context (default its current one)")
	fl.StringVarP(&s.Namespace, "namespace", "n", "", "namespace the Jobs run in (default the kubeconfig context's)")
	fl.StringVar(&s.ExecutorImage, "executor-image", "", "image the Jobs run, kiln's executor (default the one 'kiln executor image build --push' recorded)")
	fl.IntVar(&f.Parallel, "parallel", 4, "run this many Jobs at once")
	fl.DurationVar(&s.TTL, "ttl", 10*time.Minute, "delete each finished Job after this long (ttlSecondsAfterFinished)")
	fl.DurationVar(&s.Deadline, "deadline", 30*time.Minute, "fail a Job still running after this long (activeDeadlineSeconds)")
	fl.Int32Var(&s.BackoffLimit, "backoff-limit", 1, "retry a failed build pod this many times")
	fl.StringVar(&s.CPU, "cpu", "500m", "CPU request of each build pod")
	fl.StringVar(&s.CPULimit, "cpu-limit", "", "CPU limit of each build pod (default none)")
	fl.StringVar(&s.Memory, "memory", "", "memory request of each build pod (default its limit, if any)")
	fl.StringVar(&s.MemoryLimit, "memory-limit", "", "memory limit of each build pod (default none)")
	fl.StringVar(&s.ServiceAccount, "service-account", "", "service account of the build pods (default the namespace's default)")
	fl.StringVar(&s.ImagePullSecret, "image-pull-secret", "", "Secret with which the executor image is pulled")
	fl.StringVar(&s.DockerConfigSecret, "docker-config-secret", "", "docker-registry Secret (kubectl create secret docker-registry) mounted as /kaniko/.docker/config.json: the executor's registry credentials")
	fl.StringArrayVar(&f.DependencySecrets, "dependency-secret", nil, "FILE=SECRET: the Secret's key FILE (.npmrc, pip.conf or settings.xml) is given to the dependency install only; repeatable")
	fl.StringVar(&s.CacheRepo, "cache-repo", "", "registry repository the executors keep their cache in (default the executor's: <image repository>/cache)")
	fl.StringSliceVar(&s.Insecure, "insecure-registry", nil, "registry host spoken to over plain HTTP, here and by the executor; repeatable")
	fl.BoolVar(&s.HostNetwork, "host-network", false, "run the build pods in the node's network (tests whose registry is on the node's 127.0.0.1; not allowed by the restricted Pod Security Standard)")
	fl.StringArrayVarP(&f.BuildArgs, "build-arg", "b", nil, "build argument KEY=VALUE, over the stack's build_args; repeatable")
	fl.BoolVar(&f.Deploy, "deploy", false, "deploy the built functions by digest to the OpenFaaS gateway, as kiln deploy does")
	fl.StringVar(&f.Output, "output", "", `"yaml": push the build contexts and print the Jobs instead of creating them`)
	deploy := pflag.NewFlagSet("deploy", pflag.ContinueOnError)
	f.DeployFlags.Add(deploy)
	deploy.VisitAll(func(d *pflag.Flag) {
		if d.Name != "namespace" {
			fl.AddFlag(d)
		}
	})
}

// Run is kiln job: it checks the flags, opens the project with open,
// reads the stack file and builds its selected functions in the cluster,
// the pods' logs going to logs; with --output yaml it writes the Jobs to
// render instead and returns no result.
func (f Flags) Run(ctx context.Context, getenv func(string) string, open func(...project.Option) (*project.Project, error), logs, render io.Writer) ([]Result, error) {
	s := f.Settings
	if f.Output != "" && f.Output != "yaml" {
		return nil, usage.Errorf("--output %q: want yaml", f.Output)
	}
	if s.Namespace == "" {
		s.Namespace = f.Kube.Namespace()
	}
	var err error
	if s.DependencySecrets, err = ParseDependencySecrets(f.DependencySecrets); err != nil {
		return nil, err
	}
	if s.ExecutorImage == "" {
		dir, err := project.ConfigDir(getenv)
		if err != nil {
			return nil, err
		}
		if s.ExecutorImage, err = project.DefaultExecutorImage(dir); err != nil {
			return nil, err
		}
	}
	s.Epoch = getenv("SOURCE_DATE_EPOCH")
	epoch, err := project.SourceDateEpoch(getenv)
	if err != nil {
		return nil, err
	}
	args, err := project.ParseBuildArgs(f.BuildArgs)
	if err != nil {
		return nil, err
	}
	if err := s.Check(); err != nil {
		return nil, err
	}
	if f.Parallel < 1 {
		return nil, usage.Errorf("--parallel %d: want 1 or more", f.Parallel)
	}
	ds, err := f.DeployFlags.Settings()
	if err != nil {
		return nil, err
	}
	p, err := open(f.Registry.Option())
	if err != nil {
		return nil, err
	}
	st, err := p.LoadStack(ctx, f.Stack.Selection())
	if err != nil {
		return nil, err
	}
	o := Options{Parallel: f.Parallel, Logs: logs}
	if f.Output != "" {
		o.Render = render
	} else if o.Client, err = f.Kube.Client(); err != nil {
		return nil, err
	}
	if f.Deploy && f.Output == "" {
		if o.Deploy, err = p.Remote(st, ds); err != nil {
			return nil, err
		}
	}
	bs := project.BuildSettings{Platform: v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, Epoch: epoch, BuildArgs: args, Insecure: s.Insecure}
	return Stack(ctx, p, st, bs, s, o)
}
