// Package layer runs the user's local program so that its network, DNS and chosen files behave
// as if it ran in the pod. A seccomp user-notification supervisor traps the program's network
// syscalls and answers them through the pod, and a mount namespace of the program's own shows it
// the pod's files.
//
// Seccomp filters are in the kernel, so this works for every binary, statically linked Go
// programs included; nothing is preloaded. How it is wired:
//
//   - The plugin (the supervisor) starts its own executable as a helper (HelperMain) with the
//     user's command. Where the plan needs it (served files, FUSE mounts, hidden paths), the
//     helper first enters a new user and mount namespace as its root, mounts what the plan says,
//     and starts itself again in a nested user namespace as the user. It then installs the filter
//     on its thread, tells the supervisor the listener's descriptor number (and the FUSE devices')
//     over a unix socket, and the supervisor takes them with pidfd_getfd. Then the helper execs
//     the command with the program's environment laid over its own; the filter goes on to the
//     program's children and threads. `go run` and `go test` keep the toolchain outside: only
//     the program they build runs under the helper (-exec).
//   - connect to a destination that is not kept local (Outgoing): the supervisor dials it from
//     the pod first, through Config.Dial, so a refusal or a timeout is the pod's own, then
//     connects a pidfd_getfd duplicate of the program's socket to a loopback relay that carries
//     the bytes to the pod, and returns what the relay connect returned (0 or EINPROGRESS).
//     getpeername returns the original address. UDP goes the same way, per flow: a connected
//     socket through a relay, and sendto and recvfrom with an address on an unconnected one.
//   - listen is made by the supervisor, so that each listening port is announced
//     (Config.OnListen); accept with an address reports the pod's client for the connections
//     the plugin carries in from the pod (ExpectArrival).
//   - Files: the served files (Config.Files: the plugin gives the pod's /etc/resolv.conf with
//     "options use-vc", so resolvers ask over TCP, which connect carries to the cluster DNS, the
//     pod's /etc/hosts and an nsswitch.conf that asks files then DNS) are bind-mounted in the
//     program's namespace, at no cost per syscall; the pod's directories are FUSE mounts there
//     that Mount.Serve serves (the plugin, with pkg/remotefs); Config.Hidden paths look absent.
//     Only where user namespaces are unavailable are opens trapped, and the served files
//     answered from memory; FUSE mounts and hidden paths then cannot be had (ErrNoUserNamespaces).
//
// If the supervisor dies, the kernel answers every trapped syscall with ENOSYS: the program
// gets errors, it never hangs; the program itself gets SIGKILL as its parent-death signal.
//
// Like the sidecar, it imports no k8s.io package and no cobra; it imports nothing of pkg/ or
// sidecar/ either: the pod is reached only through the injected Config.Dial.
package layer
