//! Items `0..n` filed by a whole-number level (a node's free GPUs, a group's), walked in
//! the order of a `BTreeSet<(level, item)>`: level up, then item up.
//!
//! Packing re-files a node on every pod it places and looks for the first node from
//! some level up that fits; levels are few (0..=8 GPUs per node, in practice), so one
//! bit per item and level makes filing a bit flip and the walk a scan of the words in
//! use, where a tree paid a removal and an insertion per pod and a pointer chase per
//! node looked at.

use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct LevelIndex {
    words_per_level: usize,
    /// Levels that ever held an item; one emptied is kept (and skipped by its count),
    /// since a level usually fills again within the same packing.
    levels: BTreeMap<i64, Level>,
}

#[derive(Clone, Debug)]
struct Level {
    count: usize,
    bits: Vec<u64>,
    /// A bit per word of `bits`, set where that word holds an item: on a large cluster
    /// most words of a level are empty, and a walk that looked at every one of them for
    /// each pod placed grew with nodes times pods.
    words_in_use: Vec<u64>,
}

impl LevelIndex {
    /// An empty index for items `0..items`.
    pub fn new(items: usize) -> Self {
        LevelIndex {
            words_per_level: items.div_ceil(64),
            levels: BTreeMap::new(),
        }
    }

    /// Files `item` at `level`. Filing an item twice at one level is a caller's bug.
    pub fn insert(&mut self, level: i64, item: usize) {
        let words = self.words_per_level;
        let l = self.levels.entry(level).or_insert_with(|| Level {
            count: 0,
            bits: vec![0; words],
            words_in_use: vec![0; words.div_ceil(64)],
        });
        let (w, bit) = (item / 64, 1u64 << (item % 64));
        debug_assert_eq!(l.bits[w] & bit, 0, "item {item} filed twice at {level}");
        l.bits[w] |= bit;
        l.words_in_use[w / 64] |= 1 << (w % 64);
        l.count += 1;
    }

    /// Unfiles `item` from `level`, where it must be.
    pub fn remove(&mut self, level: i64, item: usize) {
        let Some(l) = self.levels.get_mut(&level) else {
            debug_assert!(false, "item {item} not filed at {level}");
            return;
        };
        let (w, bit) = (item / 64, 1u64 << (item % 64));
        debug_assert_ne!(l.bits[w] & bit, 0, "item {item} not filed at {level}");
        if l.bits[w] & bit != 0 {
            l.bits[w] &= !bit;
            if l.bits[w] == 0 {
                l.words_in_use[w / 64] &= !(1 << (w % 64));
            }
            l.count -= 1;
        }
    }

    /// Every item filed at `from` or above: lowest level first, then lowest item.
    pub fn at_or_above(&self, from: i64) -> impl Iterator<Item = usize> + '_ {
        self.levels
            .range(from..)
            .filter(|(_, l)| l.count > 0)
            .flat_map(|(_, l)| l.items())
    }

    /// Every (level, item) filed, in walking order.
    #[cfg(test)]
    pub fn entries(&self) -> Vec<(i64, usize)> {
        self.levels
            .iter()
            .flat_map(|(&level, l)| l.items().map(move |i| (level, i)))
            .collect()
    }
}

impl Level {
    /// The items filed here, lowest first: only the words in use are read.
    fn items(&self) -> impl Iterator<Item = usize> + '_ {
        ones(&self.words_in_use).flat_map(|w| ones_of(self.bits[w]).map(move |bit| w * 64 + bit))
    }
}

/// Indices of the set bits of `words`, lowest first.
fn ones(words: &[u64]) -> impl Iterator<Item = usize> + '_ {
    words
        .iter()
        .enumerate()
        .flat_map(|(w, &word)| ones_of(word).map(move |bit| w * 64 + bit))
}

/// Positions of the set bits of one word, lowest first.
fn ones_of(word: u64) -> impl Iterator<Item = usize> {
    let mut rest = word;
    std::iter::from_fn(move || {
        (rest != 0).then(|| {
            let bit = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            bit
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn walks_items_far_apart_in_order_and_forgets_emptied_words() {
        // Items in different words of the word-in-use map (64 * 64 items each).
        let mut index = LevelIndex::new(70_000);
        for item in [69_999, 4_096, 0, 4_095, 8_191, 64] {
            index.insert(2, item);
        }
        index.insert(1, 5_000);
        assert_eq!(
            index.at_or_above(1).collect::<Vec<_>>(),
            [5_000, 0, 64, 4_095, 4_096, 8_191, 69_999]
        );
        index.remove(2, 4_096);
        index.remove(2, 69_999);
        index.remove(1, 5_000);
        assert_eq!(
            index.at_or_above(0).collect::<Vec<_>>(),
            [0, 64, 4_095, 8_191]
        );
        index.insert(2, 69_998);
        assert_eq!(
            index.at_or_above(2).collect::<Vec<_>>(),
            [0, 64, 4_095, 8_191, 69_998]
        );
    }

    proptest::proptest! {
        /// Walks like the ordered set it stands for, after any filing and unfiling.
        #[test]
        fn walks_like_an_ordered_set_of_level_and_item(
            steps in proptest::collection::vec((-3i64..12, 0usize..200, proptest::bool::ANY), 0..300),
            from in -4i64..13,
        ) {
            let mut index = LevelIndex::new(200);
            let mut set = BTreeSet::new();
            let mut level_of = vec![None; 200];
            for (level, item, file) in steps {
                match (level_of[item], file) {
                    (None, true) => {
                        index.insert(level, item);
                        set.insert((level, item));
                        level_of[item] = Some(level);
                    }
                    (Some(at), false) => {
                        index.remove(at, item);
                        set.remove(&(at, item));
                        level_of[item] = None;
                    }
                    _ => {}
                }
            }
            let walked: Vec<usize> = index.at_or_above(from).collect();
            let expected: Vec<usize> = set.range((from, 0)..).map(|&(_, i)| i).collect();
            proptest::prop_assert_eq!(walked, expected);
            proptest::prop_assert_eq!(index.entries(), set.into_iter().collect::<Vec<_>>());
        }
    }
}
