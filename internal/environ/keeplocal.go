package environ

// DefaultKeepLocal returns the variables, as names and globs, that describe the developer's
// machine rather than the app: taking the pod's PATH or HOME would break the local toolchain, and
// the image's install locations (GOROOT, JAVA_HOME) do not exist here, or would run whatever a
// pod's volume served there. The pod's values stay out silently: every image sets some.
func DefaultKeepLocal() []string {
	return []string{
		"PATH", "HOME", "USER", "SHELL", "TERM", "LANG", "PWD", "TMPDIR", "KUBECONFIG", "XDG_*",
		"GOROOT", "GOPATH", "GOBIN", "GOCACHE", "GOMODCACHE", "JAVA_HOME", "GEM_HOME", "GEM_PATH",
	}
}

// DefaultGuarded returns the variables, as names and globs, that make a program on this machine
// load or run code, or fetch the code it builds: the dynamic loader's, the interpreters' and the
// toolchains'. Whoever can edit the pod's spec (or an app that rewrites its own environment)
// would otherwise choose code that runs on the developer's machine, as the developer. The pod's
// values stay out, and the session says which it left out; --env-include NAME takes one on
// purpose. The Go runtime's own settings (GOMAXPROCS, GOMEMLIMIT, GOGC, GODEBUG, GOTRACEBACK)
// only tune the app and still come in.
func DefaultGuarded() []string {
	return []string{
		// The dynamic loader and libc: preloaded objects, library paths, audit modules,
		// tunables (CVE-2023-4911), iconv modules; macOS's for an env file used there.
		"LD_*", "GLIBC_TUNABLES", "GCONV_PATH", "DYLD_*",
		// Shells: start-up files, commands run at prompts and traces, exported functions.
		"BASH_ENV", "ENV", "ZDOTDIR", "PROMPT_COMMAND", "PS0", "PS1", "PS2", "PS4", "SHELLOPTS", "BASHOPTS", "IFS", "CDPATH", "GLOBIGNORE", "BASH_FUNC_*",
		// The Go toolchain: flags (-toolexec), toolchain downloads, module sources and
		// checksums, caches, its configuration file, and the C toolchain cgo runs.
		"GOFLAGS", "GOTOOLCHAIN", "GOPROXY", "GONOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GOINSECURE", "GOVCS", "GOAUTH",
		"GOENV", "GOCACHEPROG", "GOTMPDIR", "GOWORK", "GOEXPERIMENT",
		"GOOS", "GOARCH", "GO111MODULE", "GCCGO", "CGO_*", "CC", "CXX", "FC", "AR", "PKG_CONFIG",
		// Node and npm.
		"NODE_OPTIONS", "NODE_PATH", "npm_config_*", "NPM_CONFIG_*",
		// Python and pip.
		"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "PYTHONPLATLIBDIR", "PYTHONBREAKPOINT", "PYTHONWARNINGS", "PIP_*",
		// Ruby, Perl, Lua, PHP.
		"RUBYOPT", "RUBYLIB", "BUNDLE_*", "PERL5OPT", "PERL5LIB", "PERLLIB", "PERL5DB",
		"LUA_INIT", "LUA_PATH", "LUA_CPATH", "PHPRC", "PHP_INI_SCAN_DIR",
		// Rust's cargo (wrappers, linkers, flags, its configuration) and make's flags.
		"CARGO_*", "RUSTC", "RUSTC_WRAPPER", "RUSTC_WORKSPACE_WRAPPER", "RUSTFLAGS", "RUSTDOCFLAGS", "RUSTUP_*",
		"MAKEFLAGS", "MFLAGS", "MAKEFILES",
		// The JVM (-javaagent) and its build tools, .NET start-up hooks and profilers.
		"JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH", "MAVEN_OPTS", "GRADLE_OPTS",
		"DOTNET_STARTUP_HOOKS", "CORECLR_*",
		// Programs that the tools above, or a user's shell, run: git's hooks, helpers and
		// configuration, pagers and editors, OpenSSL's engines.
		"GIT_*", "SSH_ASKPASS", "EDITOR", "VISUAL", "PAGER", "LESSOPEN", "LESSCLOSE",
		"OPENSSL_CONF", "OPENSSL_ENGINES", "OPENSSL_MODULES",
	}
}
