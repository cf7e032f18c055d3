package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// Limits of the default browse, so a large address space cannot flood the
// page: at most maxBrowsePoints variables, found within maxBrowseDepth
// levels below the Objects folder.
const (
	maxBrowsePoints = 200
	maxBrowseDepth  = 6
	maxBrowseNodes  = 2000 // nodes visited
)

// parseNodeIDs parses a comma-separated list of OPC UA node IDs
// ("ns=1;s=Boiler.Temperature,ns=2;i=1001"). Empty input gives nil.
func parseNodeIDs(list string) ([]*ua.NodeID, error) {
	var out []*ua.NodeID
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		n, err := ua.ParseNodeID(s)
		if err != nil {
			return nil, fmt.Errorf("node ID %q: %w", s, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// browseVariables walks the server's Objects folder breadth first along
// hierarchical references (properties excluded) and returns the variables it
// finds outside namespace 0, in browse order. Namespace 0 holds the
// server's own nodes (the Server object and its diagnostics), not plant data.
func browseVariables(ctx context.Context, c *opcua.Client) ([]*ua.NodeID, error) {
	type item struct {
		id    *ua.NodeID
		depth int
	}
	objects := ua.NewNumericNodeID(0, id.ObjectsFolder)
	queue := []item{{objects, 0}}
	seen := map[string]bool{objects.String(): true}
	var vars []*ua.NodeID
	for len(queue) > 0 && len(vars) < maxBrowsePoints && len(seen) < maxBrowseNodes {
		n := queue[0]
		queue = queue[1:]
		refs, err := c.Node(n.id).References(ctx, id.HierarchicalReferences, ua.BrowseDirectionForward,
			ua.NodeClassObject|ua.NodeClassVariable, true)
		if err != nil {
			return nil, fmt.Errorf("browse %v: %w", n.id, err)
		}
		for _, r := range refs {
			if r.NodeID == nil || r.NodeID.NodeID == nil || r.NodeID.NodeID.Namespace() == 0 {
				continue
			}
			if r.ReferenceTypeID != nil && r.ReferenceTypeID.IntID() == id.HasProperty && r.ReferenceTypeID.Namespace() == 0 {
				continue // metadata such as EURange, not a value of the plant
			}
			nid := r.NodeID.NodeID
			if seen[nid.String()] {
				continue
			}
			seen[nid.String()] = true
			if r.NodeClass == ua.NodeClassVariable && len(vars) < maxBrowsePoints {
				vars = append(vars, nid)
			}
			if n.depth+1 < maxBrowseDepth {
				queue = append(queue, item{nid, n.depth + 1})
			}
		}
	}
	if len(vars) == 0 {
		return nil, fmt.Errorf("browse: no variables below the Objects folder outside namespace 0; name them with -nodes")
	}
	return vars, nil
}
