// Package nodump keeps the secrets a running Custos holds (the quorum secret, shares, PINs) out
// of core files and away from debuggers: Apply, called first thing at process start, sets the
// core file size limit to zero and marks the process not dumpable, which also refuses ptrace
// attach to other processes of the same user. A crash with GOTRACEBACK=crash then writes no
// core, and gdb -p or strace -p by the operator's account cannot read the process's memory.
package nodump
