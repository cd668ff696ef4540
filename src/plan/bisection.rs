//! Bisection for a threshold, able to start from where an earlier bisection ended.
//!
//! The fair share bisects for the level at which the room runs out, stage after stage,
//! and the planner solves nearly the same problem twice a tick (the verification round
//! runs on the world the first round's plan leaves: the same jobs, services now bound
//! where that plan put them). A bisection's result is the end of a walk down the dyadic
//! tree of its start bracket, each step decided by one test; for a monotone test (true
//! up to a threshold, false past it) the walk passes through a bracket exactly when the
//! threshold lies in it. So an earlier walk's end bracket `[lo, hi]`, from the same
//! start, is this walk's end too when this test holds at `lo` and fails at `hi` (an end
//! that is still the start's was never tested by either walk and needs no test): two
//! tests instead of forty, and the same bits as bisecting afresh. Debug builds bisect
//! afresh as well and compare.

/// Steps at most: a bracket of `f64`s cannot halve more often than this.
pub const MAX_STEPS: usize = 64;

/// A bisection's start and end brackets, each `(lo, hi)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Walk {
    pub start: (f64, f64),
    pub end: (f64, f64),
}

/// Halves `start` = `(lo, hi)` while `!settled(lo, hi)`, keeping `test(lo)` true and
/// `test(hi)` false (both assumed of the start), at most [`MAX_STEPS`] times; `hint` is
/// an earlier walk, used when it started from the same bracket and this test confirms
/// its end. Returns the walk.
pub fn bisect(
    start: (f64, f64),
    hint: Option<&Walk>,
    settled: impl Fn(f64, f64) -> bool,
    mut test: impl FnMut(f64) -> bool,
) -> Walk {
    if let Some(h) = hint.filter(|h| h.start == start) {
        let (lo, hi) = h.end;
        let lo_holds = lo == start.0 || test(lo);
        if lo_holds && (hi == start.1 || !test(hi)) {
            let walk = *h;
            debug_assert_eq!(walk, afresh(start, &settled, &mut test), "a hint's walk");
            return walk;
        }
    }
    afresh(start, &settled, &mut test)
}

fn afresh(
    start: (f64, f64),
    settled: &impl Fn(f64, f64) -> bool,
    test: &mut impl FnMut(f64) -> bool,
) -> Walk {
    let (mut lo, mut hi) = start;
    for _ in 0..MAX_STEPS {
        if settled(lo, hi) {
            break;
        }
        let mid = 0.5 * (lo + hi);
        if test(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Walk {
        start,
        end: (lo, hi),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn settled(lo: f64, hi: f64) -> bool {
        hi - lo <= 1e-9 * hi.abs()
    }

    proptest! {
        /// A hinted walk ends where a fresh one does, whatever the hint: from the same
        /// start or not, with the threshold inside its end bracket or not.
        #[test]
        fn a_hint_never_changes_the_end(
            hi in 1.0f64..1e6,
            threshold in 0.0f64..1.2,
            earlier in 0.0f64..1.2,
            same_start in any::<bool>(),
        ) {
            let start = (0.0, hi);
            let earlier_walk = afresh(
                if same_start { start } else { (0.0, hi * 0.75) },
                &settled,
                &mut |t| t <= earlier * hi,
            );
            let hinted = bisect(start, Some(&earlier_walk), settled, |t| t <= threshold * hi);
            let fresh = afresh(start, &settled, &mut |t| t <= threshold * hi);
            prop_assert_eq!(hinted, fresh);
        }
    }

    #[test]
    fn a_confirmed_hint_takes_two_tests() {
        let start = (0.0, 100.0);
        let first = afresh(start, &settled, &mut |t| t <= 37.5);
        let mut tests = Vec::new();
        let again = bisect(start, Some(&first), settled, |t| {
            tests.push(t);
            t <= 37.5
        });
        assert_eq!(again, first);
        // Debug builds also walk afresh to compare.
        assert_eq!(&tests[..2], &[first.end.0, first.end.1]);
        // A threshold outside the hint's end: the hint is refused, the walk is fresh.
        let moved = bisect(start, Some(&first), settled, |t| t <= 60.0);
        assert_eq!(moved, afresh(start, &settled, &mut |t| t <= 60.0));
        assert_ne!(moved, first);
    }
}
