//! How fast a job trains: one trainer's rate times the speedup of n trainers.

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

#[cfg(test)]
mod tests {
    use super::speedup;

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
