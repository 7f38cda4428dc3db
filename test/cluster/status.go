package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/remocal/kubectl-remocal/test/cluster/daemon"
	"github.com/remocal/kubectl-remocal/test/cluster/hostnet"
)

// status prints one row per component and per network link, then the node's state.
func (h *harness) status(ctx context.Context) error {
	l := h.layout
	tw := tabwriter.NewWriter(h.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tSTATE\tPID\tLOG")
	down := 0
	for _, name := range componentNames() {
		state, pidText := "running", ""
		pid, ok := daemonRunning(l, name)
		if ok {
			pidText = fmt.Sprint(pid)
		} else {
			state = "stopped"
			down++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, state, pidText, l.daemons().LogFile(name))
	}
	for _, link := range []string{l.NodeLink, l.PodLink} {
		state := "absent"
		if hostnet.LinkExists(link) {
			state = "present"
		}
		fmt.Fprintf(tw, "link %s\t%s\t\t\n", link, state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if down > 0 {
		return fmt.Errorf("%d of %d components are not running (make cluster-up starts them)", down, len(componentNames()))
	}
	if err := nodeReady(l)(ctx); err != nil {
		return errors.New("all processes run but " + err.Error())
	}
	fmt.Fprintf(h.out, "node %s Ready\nKUBECONFIG=%s\n", l.NodeName, l.adminKubeconfig())
	return nil
}

func daemonRunning(l layout, name string) (int, bool) {
	return daemon.Running(l.daemons(), name)
}
