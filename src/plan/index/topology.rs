//! Where nodes sit relative to each other: a tree root -> rack -> NVLink group -> node,
//! flattened into the lookups packing asks for. (The tree is only ever read flat, so it
//! is built flat: a graph of every node cost a twentieth of a plan.)

use crate::model::Node;
use crate::plan::FastMap;

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
}

#[derive(Debug, PartialEq)]
pub struct TopologyIndex {
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
    /// `nodes[i]` is the snapshot node behind view index `i`. Racks are numbered in the
    /// order their first node comes, and so are the groups of each rack; a group sits
    /// in the rack of its first node.
    pub fn build(nodes: &[&Node]) -> TopologyIndex {
        let n = nodes.len();
        let mut rack_ids: FastMap<Domain, usize> = FastMap::default();
        // Most nodes are a group of their own, or share one with a few others.
        let mut group_ids: FastMap<Domain, usize> =
            FastMap::with_capacity_and_hasher(n, Default::default());
        // Groups in the order they first appear (renumbered rack by rack below).
        let mut members: Vec<Vec<usize>> = Vec::new();
        let mut groups_of_rack: Vec<Vec<usize>> = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let rack_key = Domain::of(node.topology.rack.as_deref(), i);
            let group_key = Domain::of(node.topology.nvlink_group.as_deref(), i);
            let rack = *rack_ids.entry(rack_key).or_insert_with(|| {
                groups_of_rack.push(Vec::new());
                groups_of_rack.len() - 1
            });
            let group = *group_ids.entry(group_key).or_insert_with(|| {
                members.push(Vec::new());
                groups_of_rack[rack].push(members.len() - 1);
                members.len() - 1
            });
            members[group].push(i);
        }
        let mut group_of = vec![0; n];
        let mut rack_of = vec![0; n];
        let mut group_nodes = Vec::with_capacity(members.len());
        let mut rack_groups = Vec::with_capacity(groups_of_rack.len());
        for (r, first_seen) in groups_of_rack.into_iter().enumerate() {
            let mut ids = Vec::with_capacity(first_seen.len());
            for g in first_seen {
                let gid = group_nodes.len();
                let group = std::mem::take(&mut members[g]);
                for &m in &group {
                    group_of[m] = gid;
                    rack_of[m] = r;
                }
                group_nodes.push(group);
                ids.push(gid);
            }
            rack_groups.push(ids);
        }
        let shared = group_nodes.iter().any(|g| g.len() > 1)
            || rack_groups
                .iter()
                .any(|gs| gs.iter().map(|&g| group_nodes[g].len()).sum::<usize>() > 1);
        TopologyIndex {
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
        assert_eq!(t.rack_groups.len(), 3, "r1, r2 and e's own");
        assert_eq!(t.group_nodes.len(), 4, "g1, g2, d's own and e's own");
        assert_eq!(t.rack_groups[0], vec![t.group_of[0], t.group_of[2]]);
    }

    #[test]
    fn lone_nodes_share_nothing() {
        let nodes = [node("a", None, None), node("b", None, None)];
        let refs: Vec<&Node> = nodes.iter().collect();
        assert!(!TopologyIndex::build(&refs).shared);
    }
}
