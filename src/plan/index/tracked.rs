//! A vector that remembers which of its items were handed out for change since it was
//! last asked: a cache over the items (see `room_memo`) learns what to forget without
//! every writer having to remember to tell it. Reads go through `Index`; the only way
//! to write is `get_mut`, so a change cannot slip past. `Changes` is the record itself,
//! for containers with a layout of their own (`node_trainers`).

use std::ops::Index;

pub struct Tracked<T> {
    items: Vec<T>,
    changes: Changes,
}

impl<T> Tracked<T> {
    pub fn new(items: Vec<T>) -> Self {
        let changes = Changes::new(items.len());
        Tracked { items, changes }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }

    /// Item `i` for writing; it counts as changed whether or not the caller writes.
    pub fn get_mut(&mut self, i: usize) -> &mut T {
        self.changes.mark(i);
        &mut self.items[i]
    }

    /// Each item changed since the last call, once, in the order first changed.
    pub fn drain_changed(&mut self, f: impl FnMut(usize)) {
        self.changes.drain(f);
    }
}

/// Which of `n` indices changed since they were last drained.
#[derive(Clone)]
pub struct Changes {
    changed: Vec<usize>,
    marked: Vec<bool>,
}

impl Changes {
    pub fn new(n: usize) -> Self {
        Changes {
            changed: Vec::new(),
            marked: vec![false; n],
        }
    }

    pub fn mark(&mut self, i: usize) {
        if !self.marked[i] {
            self.marked[i] = true;
            self.changed.push(i);
        }
    }

    /// Each index marked since the last call, once, in the order first marked.
    pub fn drain(&mut self, mut f: impl FnMut(usize)) {
        for i in self.changed.drain(..) {
            self.marked[i] = false;
            f(i);
        }
    }
}

impl<T> Index<usize> for Tracked<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        &self.items[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed<T>(v: &mut Tracked<T>) -> Vec<usize> {
        let mut out = Vec::new();
        v.drain_changed(|i| out.push(i));
        out
    }

    #[test]
    fn each_changed_item_is_reported_once_and_then_forgotten() {
        let mut v = Tracked::new(vec![10, 20, 30, 40]);
        assert!(changed(&mut v).is_empty());
        *v.get_mut(2) += 1;
        *v.get_mut(0) += 1;
        *v.get_mut(2) += 1;
        assert_eq!(changed(&mut v), vec![2, 0]);
        assert!(changed(&mut v).is_empty());
        let _ = v.get_mut(2);
        assert_eq!(
            changed(&mut v),
            vec![2],
            "a borrow for writing counts as a change"
        );
        assert_eq!((v[0], v[1], v[2], v[3]), (11, 20, 32, 40));
        assert_eq!(v.iter().sum::<i32>(), 103);
        assert_eq!(v.len(), 4);
    }
}
