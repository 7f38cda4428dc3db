// Package redirect owns a sidecar's nftables table in the pod's network namespace. The table
// redirects new TCP connections for subscribed ports to the sidecar's listener (steal and
// mirror); the sidecar's own connections to the app never pass the prerouting hook, so they are
// not redirected back. Tables are named after their owner, so a new sidecar can list and remove
// the tables of dead ones.
//
// It speaks netlink through github.com/google/nftables: the sidecar image has no nft or
// iptables binary.
package redirect

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// TablePrefix starts the name of every table a sidecar owns.
const TablePrefix = "remocal_"

// chainName is the table's one chain, on the prerouting hook.
const chainName = "prerouting"

// Table is one sidecar's table, with a NAT chain on the prerouting hook.
type Table struct {
	opts  []nftables.ConnOption
	table *nftables.Table
	chain *nftables.Chain

	mu    sync.Mutex
	rules map[uint16]uint64 // subscribed port -> rule handle
}

// Open creates (or takes over) the table of owner. opts select the network namespace
// (nftables.WithNetNSFd); none means the caller's.
func Open(owner string, opts ...nftables.ConnOption) (*Table, error) {
	if owner == "" || strings.ContainsAny(owner, " \t\n") {
		return nil, fmt.Errorf("bad table owner %q", owner)
	}
	t := &Table{opts: opts, rules: map[uint16]uint64{}}
	t.table = &nftables.Table{Name: TablePrefix + owner, Family: nftables.TableFamilyINet}
	err := t.apply(func(c *nftables.Conn) {
		// Deleting first makes Open idempotent: a restarted sidecar with the same name starts
		// from an empty table, never from rules it no longer tracks.
		c.AddTable(t.table)
		c.DelTable(t.table)
		c.AddTable(t.table)
		t.chain = c.AddChain(&nftables.Chain{
			Name:     chainName,
			Table:    t.table,
			Type:     nftables.ChainTypeNAT,
			Hooknum:  nftables.ChainHookPrerouting,
			Priority: nftables.ChainPriorityNATDest,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("create nftables table %s: %w", t.table.Name, explain(err))
	}
	return t, nil
}

// Name is the table's name.
func (t *Table) Name() string { return t.table.Name }

// Redirect sends new TCP connections to port on to instead. A port is redirected at most once.
func (t *Table) Redirect(port, to uint16) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.rules[port]; ok {
		return fmt.Errorf("port %d is already redirected", port)
	}
	conn, err := nftables.New(t.opts...)
	if err != nil {
		return err
	}
	conn.AddRule(&nftables.Rule{
		Table: t.table,
		Chain: t.chain,
		Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
			&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(to)},
			&expr.Redir{RegisterProtoMin: 1},
		},
	})
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("redirect port %d: %w", port, explain(err))
	}
	handle, err := t.findRule(port)
	if err != nil {
		return err
	}
	t.rules[port] = handle
	return nil
}

// findRule reads back the handle the kernel gave the rule for port.
func (t *Table) findRule(port uint16) (uint64, error) {
	conn, err := nftables.New(t.opts...)
	if err != nil {
		return 0, err
	}
	rules, err := conn.GetRules(t.table, t.chain)
	if err != nil {
		return 0, err
	}
	for _, r := range rules {
		if p, ok := redirectedPort(r); ok && p == port {
			return r.Handle, nil
		}
	}
	return 0, fmt.Errorf("the rule for port %d is not in table %s", port, t.table.Name)
}

// redirectedPort is the destination port a rule of Redirect matches.
func redirectedPort(r *nftables.Rule) (uint16, bool) {
	for i, e := range r.Exprs {
		if p, ok := e.(*expr.Payload); ok && p.Base == expr.PayloadBaseTransportHeader && p.Offset == 2 && i+1 < len(r.Exprs) {
			if c, ok := r.Exprs[i+1].(*expr.Cmp); ok && len(c.Data) == 2 {
				return binaryutil.BigEndian.Uint16(c.Data), true
			}
		}
	}
	return 0, false
}

// TablePorts lists the ports a remocal table redirects, whichever sidecar made it.
func TablePorts(name string, opts ...nftables.ConnOption) ([]uint16, error) {
	conn, err := nftables.New(opts...)
	if err != nil {
		return nil, err
	}
	table := &nftables.Table{Name: name, Family: nftables.TableFamilyINet}
	rules, err := conn.GetRules(table, &nftables.Chain{Name: chainName, Table: table})
	if err != nil {
		return nil, fmt.Errorf("list the rules of %s: %w", name, explain(err))
	}
	var ports []uint16
	for _, r := range rules {
		if p, ok := redirectedPort(r); ok {
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// Remove stops redirecting port. New connections reach the app again; redirected ones that
// are open stay with the sidecar.
func (t *Table) Remove(port uint16) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	handle, ok := t.rules[port]
	if !ok {
		return nil
	}
	err := t.apply(func(c *nftables.Conn) {
		_ = c.DelRule(&nftables.Rule{Table: t.table, Chain: t.chain, Handle: handle})
	})
	if err != nil {
		return fmt.Errorf("stop redirecting port %d: %w", port, explain(err))
	}
	delete(t.rules, port)
	return nil
}

// Ports lists the redirected ports.
func (t *Table) Ports() []uint16 {
	t.mu.Lock()
	defer t.mu.Unlock()
	ports := make([]uint16, 0, len(t.rules))
	for p := range t.rules {
		ports = append(ports, p)
	}
	return ports
}

// Close deletes the table and every redirect in it.
func (t *Table) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rules = map[uint16]uint64{}
	return DeleteTable(t.table.Name, t.opts...)
}

func (t *Table) apply(change func(c *nftables.Conn)) error {
	conn, err := nftables.New(t.opts...)
	if err != nil {
		return err
	}
	change(conn)
	return conn.Flush()
}

// Tables lists the remocal tables in the namespace: this sidecar's and those of others, live
// or dead.
func Tables(opts ...nftables.ConnOption) ([]string, error) {
	conn, err := nftables.New(opts...)
	if err != nil {
		return nil, err
	}
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list nftables tables: %w", explain(err))
	}
	var names []string
	for _, t := range tables {
		if strings.HasPrefix(t.Name, TablePrefix) {
			names = append(names, t.Name)
		}
	}
	return names, nil
}

// DeleteTable removes a remocal table; a table already gone is not an error.
func DeleteTable(name string, opts ...nftables.ConnOption) error {
	if !strings.HasPrefix(name, TablePrefix) {
		return fmt.Errorf("%s is not a remocal table", name)
	}
	conn, err := nftables.New(opts...)
	if err != nil {
		return err
	}
	conn.DelTable(&nftables.Table{Name: name, Family: nftables.TableFamilyINet})
	if err := conn.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete nftables table %s: %w", name, explain(err))
	}
	return nil
}

// explain adds what to do to the kernel's refusal for lack of NET_ADMIN.
func explain(err error) error {
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%w (the sidecar needs the NET_ADMIN capability, which only a privileged Pod Security level allows)", err)
	}
	return err
}
