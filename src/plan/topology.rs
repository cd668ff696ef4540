//! Where nodes sit relative to each other: a tree root -> rack -> NVLink group -> node,
//! held as a petgraph graph, flattened into the lookups packing asks for.

use super::FastMap;
use crate::model::Node;
use petgraph::graph::{DiGraph, NodeIndex};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Level {
    Root,
    Rack(String),
    Group(String),
    Node(usize),
}

/// A rack or NVLink group: a real id, or the node itself when it has none (then it is
/// alone at that level).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Domain<'a> {
    Id(&'a str),
    Alone(usize),
}

impl<'a> Domain<'a> {
    fn of(id: Option<&'a str>, node: usize) -> Self {
        id.map_or(Domain::Alone(node), Domain::Id)
    }

    /// The NUL prefix keeps a node's own domain apart from any real id.
    fn name(self, node: &Node) -> String {
        match self {
            Domain::Id(id) => id.to_string(),
            Domain::Alone(_) => format!("\0node:{}", node.name),
        }
    }
}

pub struct TopologyIndex {
    pub graph: DiGraph<Level, ()>,
    /// Dense group id of each node.
    pub group_of: Vec<usize>,
    pub rack_of: Vec<usize>,
    /// Nodes of each group, in node order.
    pub group_nodes: Vec<Vec<usize>>,
    /// Groups of each rack.
    pub rack_groups: Vec<Vec<usize>>,
    /// True when some group or rack holds more than one node, i.e. locality can matter
    /// beyond "same node".
    pub shared: bool,
}

impl TopologyIndex {
    /// `nodes[i]` is the snapshot node behind view index `i`.
    pub fn build(nodes: &[&Node]) -> TopologyIndex {
        let mut graph = DiGraph::new();
        let root = graph.add_node(Level::Root);
        // Keyed by the borrowed ids: a string is made only for each new rack or group.
        let mut racks: FastMap<Domain, NodeIndex> = FastMap::default();
        let mut groups: FastMap<Domain, NodeIndex> = FastMap::default();
        for (i, node) in nodes.iter().enumerate() {
            let rack_key = Domain::of(node.topology.rack.as_deref(), i);
            let group_key = Domain::of(node.topology.nvlink_group.as_deref(), i);
            let rack = *racks.entry(rack_key).or_insert_with(|| {
                let r = graph.add_node(Level::Rack(rack_key.name(node)));
                graph.add_edge(root, r, ());
                r
            });
            let group = *groups.entry(group_key).or_insert_with(|| {
                let g = graph.add_node(Level::Group(group_key.name(node)));
                graph.add_edge(rack, g, ());
                g
            });
            let n = graph.add_node(Level::Node(i));
            graph.add_edge(group, n, ());
        }
        Self::flatten(graph, root, nodes.len())
    }

    fn flatten(graph: DiGraph<Level, ()>, root: NodeIndex, n: usize) -> TopologyIndex {
        let mut group_of = vec![0; n];
        let mut rack_of = vec![0; n];
        let mut group_nodes = Vec::new();
        let mut rack_groups = Vec::new();
        let mut rack_list: Vec<NodeIndex> = graph.neighbors(root).collect();
        rack_list.sort();
        for (r, rack) in rack_list.into_iter().enumerate() {
            let mut gs: Vec<NodeIndex> = graph.neighbors(rack).collect();
            gs.sort();
            let mut ids = Vec::new();
            for g in gs {
                let gid = group_nodes.len();
                let mut members: Vec<usize> = graph
                    .neighbors(g)
                    .filter_map(|c| match graph[c] {
                        Level::Node(i) => Some(i),
                        _ => None,
                    })
                    .collect();
                members.sort_unstable();
                for &m in &members {
                    group_of[m] = gid;
                    rack_of[m] = r;
                }
                group_nodes.push(members);
                ids.push(gid);
            }
            rack_groups.push(ids);
        }
        let shared = group_nodes.iter().any(|g| g.len() > 1)
            || rack_groups
                .iter()
                .any(|gs| gs.iter().map(|&g| group_nodes[g].len()).sum::<usize>() > 1);
        TopologyIndex {
            graph,
            group_of,
            rack_of,
            group_nodes,
            rack_groups,
            shared,
        }
    }

    /// 0 same node, 1 same NVLink group, 2 same rack, 3 elsewhere.
    pub fn distance(&self, a: usize, b: usize) -> u8 {
        if a == b {
            0
        } else if self.group_of[a] == self.group_of[b] {
            1
        } else if self.rack_of[a] == self.rack_of[b] {
            2
        } else {
            3
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Resources, Topology};

    fn node(name: &str, group: Option<&str>, rack: Option<&str>) -> Node {
        let mut n = Node::new(name, Resources::new(1000, 0, 8));
        n.topology = Topology {
            nvlink_group: group.map(str::to_string),
            rack: rack.map(str::to_string),
        };
        n
    }

    #[test]
    fn distances_follow_the_tree() {
        let nodes = [
            node("a", Some("g1"), Some("r1")),
            node("b", Some("g1"), Some("r1")),
            node("c", Some("g2"), Some("r1")),
            node("d", None, Some("r2")),
            node("e", None, None),
        ];
        let refs: Vec<&Node> = nodes.iter().collect();
        let t = TopologyIndex::build(&refs);
        assert_eq!(t.distance(0, 0), 0);
        assert_eq!(t.distance(0, 1), 1);
        assert_eq!(t.distance(0, 2), 2);
        assert_eq!(t.distance(0, 3), 3);
        assert_eq!(t.distance(3, 4), 3);
        assert!(t.shared);
        assert_eq!(t.group_nodes[t.group_of[0]], vec![0, 1]);
        // root + 3 racks + 4 groups + 5 nodes
        assert_eq!(t.graph.node_count(), 13);
    }

    #[test]
    fn lone_nodes_share_nothing() {
        let nodes = [node("a", None, None), node("b", None, None)];
        let refs: Vec<&Node> = nodes.iter().collect();
        assert!(!TopologyIndex::build(&refs).shared);
    }
}
