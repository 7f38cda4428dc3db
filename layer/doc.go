// Package layer runs the user's local program so that its network and DNS behave as if it ran
// in the pod: a seccomp user-notification supervisor traps the program's connect, getpeername,
// listen, unconnected sendto and the opens of a few files, and answers them through the sidecar.
//
// Seccomp filters are in the kernel, so this works for every binary, statically linked Go
// programs included; nothing is preloaded. How it is wired:
//
//   - The plugin (the supervisor) starts its own executable as a helper (HelperMain) with the
//     user's command. The helper installs the filter on its thread, tells the supervisor the
//     listener's descriptor number over a unix socket, and the supervisor takes the descriptor
//     with pidfd_getfd. Then the helper execs the command, which inherits the filter, as do its
//     children and threads.
//   - connect to a destination that is not kept local: the supervisor dials it from the pod
//     first, so a refusal or a timeout is the pod's own, then connects a pidfd_getfd duplicate
//     of the program's socket to a loopback relay that carries the bytes to the pod, and returns
//     what the relay connect returned (0 or EINPROGRESS). getpeername returns the original
//     address.
//   - DNS: opens of /etc/resolv.conf, /etc/hosts and /etc/nsswitch.conf get the pod's (with
//     "options use-vc", so resolvers ask over TCP, which connect carries to the cluster DNS).
//
// If the supervisor dies, the kernel answers every trapped syscall with ENOSYS: the program
// gets errors, it never hangs; the program itself gets SIGKILL as its parent-death signal.
//
// Like the sidecar, it imports no k8s.io package and no cobra.
package layer
