//! Capacity a constrained job can actually use: the cluster cut into *pools* (classes
//! of nodes that every pod group's eligibility treats alike) and demand routed into
//! them as a flow.
//!
//! A *group* is a set of jobs with the same eligible nodes (the same trainer
//! constraints), and may use the pools those nodes fall in. Demand `D_g` (a vector over
//! cpu, memory, gpus) is feasible when, for each resource on its own, it can be routed
//! from the groups into the pools they may use without any pool's room being exceeded:
//! a transportation problem, i.e. a maximum flow on the bipartite network
//! source → group (capacity `D_g[k]`) → pool (unbounded, where eligible) → sink
//! (capacity `room_p[k]`). Routing each resource separately is a relaxation of placing
//! whole pods (a job that may use two pools could route its CPU to one and its GPUs to
//! the other); packing, which places whole pods, has the last word.
//!
//! The network has a handful of groups and pools but is asked about thousands of
//! times per plan, mostly "does one more trainer of this group fit?", so the flow is
//! kept and augmented in place ([`Routing::route`]) rather than solved from scratch.
//! Augmenting one group at a time from an empty flow gives a maximum flow: once no
//! augmenting path leaves a group, augmenting others never creates one, since every
//! residual edge an augmentation adds joins two vertices that already reach the sink.

// Index loops over per-resource arrays read like the formulas.
#![allow(clippy::needless_range_loop)]

use super::fairshare::Res3;

/// The pools' room and, per group, the pools it may use and demand fixed outside any
/// job (pending service pods).
#[derive(Clone, Debug, PartialEq)]
pub struct Pools {
    pub room: Vec<Res3>,
    pub group_pools: Vec<Vec<usize>>,
    pub group_fixed: Vec<Res3>,
}

/// Flow below this (relative to the resource's total room) is rounding noise.
const NOISE: f64 = 1e-12;
/// Room below this (relative) counts as none when asking who can still grow: after
/// bisection the binding pools have a sliver of room left.
const SATURATED: f64 = 1e-7;
/// Augmentations at most per route: each one empties a pool's room or a flow edge,
/// so a handful of groups and pools needs a few dozen.
const MAX_AUGMENTATIONS: usize = 4096;

impl Pools {
    pub fn groups(&self) -> usize {
        self.group_pools.len()
    }

    fn scale(&self) -> Res3 {
        let mut s = [1.0f64; 3];
        for r in &self.room {
            for k in 0..3 {
                s[k] += r[k].max(0.0);
            }
        }
        s
    }
}

/// A flow of demand into the pools, per resource.
#[derive(Clone, Debug)]
pub struct Routing {
    pools_n: usize,
    /// `flow[g * pools_n + p][k]`: resource `k` of group `g` routed into pool `p`.
    flow: Vec<Res3>,
    /// Room left per pool.
    slack: Vec<Res3>,
    noise: Res3,
    saturated: Res3,
    /// While [`Routing::try_route`] runs: each changed cell's old value.
    undo_log: Option<Vec<(Cell, usize, f64)>>,
    /// The log's buffer between trials.
    undo: Vec<(Cell, usize, f64)>,
    buffers: SearchBuffers,
}

/// What a search for an augmenting path works in (see [`Routing::search`]).
#[derive(Clone, Debug, Default)]
struct SearchBuffers {
    came_from: Vec<Option<(usize, usize)>>,
    seen: Vec<bool>,
    queue: Vec<usize>,
}

/// A cell of the routing that a trial changed.
#[derive(Clone, Copy, Debug)]
enum Cell {
    Flow(usize),
    Slack(usize),
}

impl Routing {
    /// No demand routed yet.
    pub fn empty(pools: &Pools) -> Routing {
        let scale = pools.scale();
        Routing {
            pools_n: pools.room.len(),
            flow: vec![[0.0; 3]; pools.groups() * pools.room.len()],
            slack: pools.room.iter().map(|r| r.map(|v| v.max(0.0))).collect(),
            noise: scale.map(|s| s * NOISE),
            saturated: scale.map(|s| s * SATURATED),
            undo_log: None,
            undo: Vec::new(),
            buffers: SearchBuffers::default(),
        }
    }

    /// The fixed demand of every group routed, and what did not fit.
    pub fn with_fixed(pools: &Pools) -> (Routing, Res3) {
        let mut r = Routing::empty(pools);
        let mut unplaced = [0.0; 3];
        for g in 0..pools.groups() {
            let left = r.route(pools, g, &pools.group_fixed[g]);
            for k in 0..3 {
                unplaced[k] += left[k];
            }
        }
        (r, unplaced)
    }

    /// Routes `demand` more of group `g`, as much as fits; returns what did not fit.
    pub fn route(&mut self, pools: &Pools, g: usize, demand: &Res3) -> Res3 {
        let mut left = [0.0; 3];
        for k in 0..3 {
            if demand[k] > 0.0 {
                left[k] = self.route_one(pools, g, k, demand[k]);
            }
        }
        left
    }

    /// Whether `demand` more of group `g` fits, routed for good when it does.
    pub fn try_route(&mut self, pools: &Pools, g: usize, demand: &Res3) -> bool {
        // The usual case: the group's own pools have the room, and routing straight into
        // it cannot fail, so there is nothing to undo and no copy to make (rounding asks
        // once per trainer handed out).
        let direct = (0..3).all(|k| {
            demand[k] <= 0.0
                || pools.group_pools[g]
                    .iter()
                    .map(|&p| self.slack[p][k].max(0.0))
                    .sum::<f64>()
                    >= demand[k] + self.noise[k]
        });
        if direct {
            self.route(pools, g, demand);
            return true;
        }
        // Routed in place, with the old value of every cell it changes written down to
        // put back if the demand does not fit: a copy of the whole flow per refused
        // trainer cost more than the search.
        let mut undo = std::mem::take(&mut self.undo);
        undo.clear();
        self.undo_log = Some(undo);
        let left = self.route(pools, g, demand);
        let undo = self.undo_log.take().unwrap_or_default();
        let fits = (0..3).all(|k| left[k] <= self.noise[k]);
        if !fits {
            for &(cell, k, old) in undo.iter().rev() {
                match cell {
                    Cell::Flow(i) => self.flow[i][k] = old,
                    Cell::Slack(p) => self.slack[p][k] = old,
                }
            }
        }
        self.undo = undo;
        fits
    }

    fn set_flow(&mut self, i: usize, k: usize, v: f64) {
        if let Some(log) = &mut self.undo_log {
            log.push((Cell::Flow(i), k, self.flow[i][k]));
        }
        self.flow[i][k] = v;
    }

    fn set_slack(&mut self, p: usize, k: usize, v: f64) {
        if let Some(log) = &mut self.undo_log {
            log.push((Cell::Slack(p), k, self.slack[p][k]));
        }
        self.slack[p][k] = v;
    }

    /// Room left, per pool.
    pub fn slack(&self) -> &[Res3] {
        &self.slack
    }

    fn route_one(&mut self, pools: &Pools, g: usize, k: usize, mut amount: f64) -> f64 {
        let n = self.pools_n;
        // Straight into room the group may use: the usual case, no search.
        for &p in &pools.group_pools[g] {
            let take = amount.min(self.slack[p][k]);
            if take > 0.0 {
                self.set_flow(g * n + p, k, self.flow[g * n + p][k] + take);
                self.set_slack(p, k, self.slack[p][k] - take);
                amount -= take;
                if amount <= self.noise[k] {
                    return 0.0;
                }
            }
        }
        let mut at = std::mem::take(&mut self.buffers);
        let left = self.augment(pools, g, k, amount, &mut at);
        self.buffers = at;
        left
    }

    /// Routes `amount` of resource `k` of group `g` along augmenting paths; returns
    /// what did not fit.
    fn augment(
        &mut self,
        pools: &Pools,
        g: usize,
        k: usize,
        mut amount: f64,
        at: &mut SearchBuffers,
    ) -> f64 {
        let n = self.pools_n;
        for _ in 0..MAX_AUGMENTATIONS {
            let Some(end) = self.search(pools, g, k, self.noise[k], at) else {
                return amount;
            };
            let came_from = &at.came_from;
            // The bottleneck: room at the end, and the flow moved off each pool on the way.
            let mut a = amount.min(self.slack[end][k]);
            let mut p = end;
            while let Some((prev, via)) = came_from[p] {
                a = a.min(self.flow[via * n + prev][k]);
                p = prev;
            }
            self.set_slack(end, k, self.slack[end][k] - a);
            let mut p = end;
            while let Some((prev, via)) = came_from[p] {
                // Group `via` moves `a` from pool `prev` to pool `p`.
                self.set_flow(via * n + p, k, self.flow[via * n + p][k] + a);
                self.set_flow(via * n + prev, k, self.flow[via * n + prev][k] - a);
                p = prev;
            }
            // `p` is now a pool of `g` itself, where `a` of `g` goes.
            self.set_flow(g * n + p, k, self.flow[g * n + p][k] + a);
            amount -= a;
            if amount <= self.noise[k] {
                return 0.0;
            }
        }
        amount
    }

    /// Breadth-first search for a pool with more than `room` of resource `k` left,
    /// reachable from group `g`'s pools by moving other groups' flow between pools they
    /// may use. Returns that pool; `at.came_from` then holds, per pool reached, where
    /// from and by which group (None for `g`'s own pools). The buffers are the caller's:
    /// rounding searches once per refused trainer, and allocating them each time cost
    /// more than the search.
    fn search(
        &self,
        pools: &Pools,
        g: usize,
        k: usize,
        room: f64,
        at: &mut SearchBuffers,
    ) -> Option<usize> {
        let n = self.pools_n;
        at.came_from.clear();
        at.came_from.resize(n, None);
        at.seen.clear();
        at.seen.resize(n, false);
        at.queue.clear();
        for &p in &pools.group_pools[g] {
            if !at.seen[p] {
                at.seen[p] = true;
                at.queue.push(p);
            }
        }
        let mut head = 0;
        while let Some(&p) = at.queue.get(head) {
            head += 1;
            if self.slack[p][k] > room {
                return Some(p);
            }
            for other in 0..pools.groups() {
                if self.flow[other * n + p][k] <= self.noise[k] {
                    continue;
                }
                for &q in &pools.group_pools[other] {
                    if !at.seen[q] {
                        at.seen[q] = true;
                        at.came_from[q] = Some((p, other));
                        at.queue.push(q);
                    }
                }
            }
        }
        None
    }

    /// Whether group `g` could take more of resource `k`: some pool it reaches (directly
    /// or by moving others) has more than a sliver of room left.
    pub fn can_grow(&self, pools: &Pools, g: usize, k: usize) -> bool {
        self.search(
            pools,
            g,
            k,
            self.saturated[k],
            &mut SearchBuffers::default(),
        )
        .is_some()
    }
}

/// Demand that no routing fits: per resource, the total demand less the maximum flow.
pub fn unplaced(pools: &Pools, demand: &[Res3]) -> (Routing, Res3) {
    let (mut r, mut left) = Routing::with_fixed(pools);
    for (g, d) in demand.iter().enumerate() {
        let l = r.route(pools, g, d);
        for k in 0..3 {
            left[k] += l[k];
        }
    }
    (r, left)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pools(room: Vec<Res3>, group_pools: Vec<Vec<usize>>) -> Pools {
        let groups = group_pools.len();
        Pools {
            room,
            group_pools,
            group_fixed: vec![[0.0; 3]; groups],
        }
    }

    #[test]
    fn demand_moves_aside_for_a_group_that_can_use_only_one_pool() {
        // Pool 0 holds 4 GPUs, pool 1 holds 4. Group 0 may use both and arrives first,
        // filling pool 0; group 1 may use only pool 0, so group 0 must move over.
        let p = pools(
            vec![[0.0, 0.0, 4.0], [0.0, 0.0, 4.0]],
            vec![vec![0, 1], vec![0]],
        );
        let (r, left) = unplaced(&p, &[[0.0, 0.0, 4.0], [0.0, 0.0, 4.0]]);
        assert_eq!(left, [0.0; 3]);
        assert_eq!(r.slack(), &[[0.0; 3], [0.0; 3]]);
        // Nothing more fits anywhere.
        let (r, left) = unplaced(&p, &[[0.0, 0.0, 4.0], [0.0, 0.0, 5.0]]);
        assert_eq!(left, [0.0, 0.0, 1.0]);
        assert!(!r.can_grow(&p, 0, 2) && !r.can_grow(&p, 1, 2));
    }

    #[test]
    fn a_group_confined_to_a_full_pool_cannot_grow_while_another_can() {
        let p = pools(
            vec![[0.0, 0.0, 2.0], [0.0, 0.0, 8.0]],
            vec![vec![0], vec![0, 1]],
        );
        let (r, left) = unplaced(&p, &[[0.0, 0.0, 2.0], [0.0, 0.0, 3.0]]);
        assert_eq!(left, [0.0; 3]);
        assert!(!r.can_grow(&p, 0, 2));
        assert!(r.can_grow(&p, 1, 2));
        let mut r = r;
        assert!(!r.try_route(&p, 0, &[0.0, 0.0, 1.0]));
        assert!(r.try_route(&p, 1, &[0.0, 0.0, 5.0]));
        assert!(!r.try_route(&p, 1, &[0.0, 0.0, 1.0]));
    }

    #[test]
    fn fixed_demand_is_routed_first() {
        let mut p = pools(
            vec![[4.0, 0.0, 0.0], [4.0, 0.0, 0.0]],
            vec![vec![0], vec![0, 1]],
        );
        p.group_fixed[0] = [3.0, 0.0, 0.0];
        let (mut r, left) = Routing::with_fixed(&p);
        assert_eq!(left, [0.0; 3]);
        assert!(r.try_route(&p, 1, &[5.0, 0.0, 0.0]));
        assert!(!r.try_route(&p, 0, &[1.0, 0.0, 0.0]));
    }

    proptest::proptest! {
        /// The routed flow never exceeds a pool's room, uses only pools a group may use,
        /// and places everything exactly when Hall's condition holds: for every set of
        /// pools, the demand of groups confined to it fits its room.
        #[test]
        fn routing_is_a_maximum_flow(
            rooms in proptest::collection::vec(0u32..6, 1..5),
            groups in proptest::collection::vec((1u32..16, 0u32..8), 1..5),
        ) {
            let n = rooms.len();
            let room: Vec<Res3> = rooms.iter().map(|&r| [0.0, 0.0, f64::from(r)]).collect();
            let group_pools: Vec<Vec<usize>> = groups
                .iter()
                .map(|&(mask, _)| (0..n).filter(|&p| mask >> p & 1 == 1).collect())
                .collect();
            let demand: Vec<Res3> = groups.iter().map(|&(_, d)| [0.0, 0.0, f64::from(d)]).collect();
            let p = pools(room.clone(), group_pools.clone());
            let (r, left) = unplaced(&p, &demand);
            for q in 0..n {
                proptest::prop_assert!(r.slack()[q][2] >= -1e-9);
            }
            for (g, allowed) in group_pools.iter().enumerate() {
                for q in 0..n {
                    if !allowed.contains(&q) {
                        proptest::prop_assert!(r.flow[g * n + q][2].abs() <= 1e-9);
                    }
                }
            }
            // Hall's deficiency: the largest shortfall over sets of pools.
            let mut deficiency: f64 = 0.0;
            for set in 0u32..(1 << n) {
                let cap: f64 = (0..n).filter(|&q| set >> q & 1 == 1).map(|q| room[q][2]).sum();
                let confined: f64 = group_pools
                    .iter()
                    .zip(&demand)
                    .filter(|(a, _)| a.iter().all(|&q| set >> q & 1 == 1))
                    .map(|(_, d)| d[2])
                    .sum();
                deficiency = deficiency.max(confined - cap);
            }
            proptest::prop_assert!((left[2] - deficiency).abs() <= 1e-9, "{left:?} vs {deficiency}");
        }

        /// A trial that does not fit leaves the routing exactly as it was (it is routed
        /// in place and undone); one that fits leaves what routing it outright leaves.
        #[test]
        fn a_refused_trial_changes_nothing(
            rooms in proptest::collection::vec(0u32..6, 1..5),
            groups in proptest::collection::vec((1u32..16, 0u32..8), 1..5),
            trials in proptest::collection::vec((0usize..5, 0u32..6, 0usize..3), 1..12),
        ) {
            let n = rooms.len();
            let room: Vec<Res3> = rooms
                .iter()
                .map(|&r| [f64::from(r), 0.5 * f64::from(r), f64::from(r)])
                .collect();
            let group_pools: Vec<Vec<usize>> = groups
                .iter()
                .map(|&(mask, _)| (0..n).filter(|&p| mask >> p & 1 == 1).collect())
                .collect();
            let demand: Vec<Res3> = groups
                .iter()
                .map(|&(_, d)| [f64::from(d) / 2.0, 0.0, f64::from(d) / 2.0])
                .collect();
            let p = pools(room, group_pools);
            let (mut r, _) = unplaced(&p, &demand);
            for (g, amount, k) in trials {
                let g = g % p.groups();
                let mut want = [0.0; 3];
                want[k] = f64::from(amount);
                let before = r.clone();
                let mut outright = r.clone();
                let left = outright.route(&p, g, &want);
                let fits = (0..3).all(|k| left[k] <= r.noise[k]);
                proptest::prop_assert_eq!(r.try_route(&p, g, &want), fits);
                let expected = if fits { &outright } else { &before };
                proptest::prop_assert_eq!(&r.flow, &expected.flow);
                proptest::prop_assert_eq!(&r.slack, &expected.slack);
            }
        }
    }
}
