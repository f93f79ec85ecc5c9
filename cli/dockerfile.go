package cli

// cmdReleasesDockerfile prints the Dockerfile plat generated for a release
// whose push had none: commit it as Dockerfile to take over the build.
func cmdReleasesDockerfile(e *env, args []string) error {
	return e.releaseText(args, "dockerfile", "dockerfile")
}
