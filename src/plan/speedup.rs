//! How a job's throughput grows with its trainers: measured `(trainers, speedup)` points,
//! and the size beyond which more trainers buy (almost) nothing.

/// `table`: measured `(trainers, speedup)` points, increasing in trainers. Between points
/// the speedup is interpolated linearly; beyond the last it stays flat (more trainers
/// than were measured are assumed to add nothing); below the first it scales linearly
/// from zero. No table: linear scaling.
pub fn speedup(table: &[(u32, f64)], trainers: u32) -> f64 {
    let n = f64::from(trainers);
    let Some(&(first_n, first_s)) = table.first() else {
        return n;
    };
    if trainers <= first_n {
        return first_s * n / f64::from(first_n);
    }
    for pair in table.windows(2) {
        let ((a, sa), (b, sb)) = (pair[0], pair[1]);
        if trainers <= b {
            let t = (n - f64::from(a)) / f64::from(b - a);
            return sa + t * (sb - sa);
        }
    }
    table.last().map_or(n, |&(_, s)| s)
}

/// Trainers beyond which throughput rises by at most `slack` (0.05: 5%): the smallest
/// count in `1..=max` whose speedup is within `slack` of the best in that range. Without
/// points, `max` (linear scaling always gains).
pub fn useful_trainers(table: &[(u32, f64)], max: u32, slack: f64) -> u32 {
    if table.is_empty() || max == 0 {
        return max;
    }
    // Piecewise linear, flat after the last point: the best is at a point or at `max`.
    let best = table
        .iter()
        .filter(|&&(n, _)| n <= max)
        .map(|&(_, s)| s)
        .fold(speedup(table, max), f64::max);
    let enough = best / (1.0 + slack);
    // Increasing counts: the first point whose value reaches `enough` bounds the search.
    let bound = table
        .iter()
        .map(|&(n, _)| n.min(max))
        .find(|&n| speedup(table, n) >= enough)
        .unwrap_or(max);
    // Between the previous point and `bound` the curve is linear: search that stretch.
    let from = table
        .iter()
        .map(|&(n, _)| n)
        .filter(|&n| n < bound)
        .max()
        .unwrap_or(1)
        .max(1);
    (from..=bound)
        .find(|&n| speedup(table, n) >= enough)
        .unwrap_or(bound)
}

#[cfg(test)]
mod tests {
    use super::{speedup, useful_trainers};

    #[test]
    fn the_useful_size_is_where_the_curve_flattens() {
        assert_eq!(useful_trainers(&[], 64, 0.05), 64);
        // Linear to 8, then flat: 8 trainers are as good as 64.
        let flat = [(1, 1.0), (8, 8.0), (16, 8.0)];
        assert_eq!(useful_trainers(&flat, 64, 0.05), 8);
        // Within 5% of 8.0 is 7.62: 8 is the first whole count there.
        assert_eq!(useful_trainers(&flat, 6, 0.05), 6, "capped by max");
        // Still rising by more than 5% to the end: all of max.
        let rising = [(1, 1.0), (4, 3.5), (16, 12.0)];
        assert_eq!(useful_trainers(&rising, 16, 0.05), 16);
        // Falls after a peak: the peak (or just short of it).
        let peak = [(1, 1.0), (4, 4.0), (8, 3.0)];
        assert_eq!(useful_trainers(&peak, 8, 0.05), 4);
        // A slow climb: 10 -> 10.4 over 10..20 is within 5% from 10 on.
        let slow = [(1, 1.0), (10, 10.0), (20, 10.4)];
        assert_eq!(useful_trainers(&slow, 20, 0.05), 10);
    }

    #[test]
    fn linear_without_a_table() {
        assert_eq!(speedup(&[], 0), 0.0);
        assert_eq!(speedup(&[], 37), 37.0);
    }

    #[test]
    fn interpolates_and_saturates() {
        let t = [(1, 1.0), (4, 3.0), (8, 5.0)];
        assert_eq!(speedup(&t, 1), 1.0);
        assert!((speedup(&t, 2) - 1.666_666).abs() < 1e-4);
        assert_eq!(speedup(&t, 6), 4.0);
        assert_eq!(speedup(&t, 100), 5.0);
        assert_eq!(speedup(&[(2, 1.8)], 1), 0.9);
    }
}
