//! The one way benchmarks read a quantile from their timings.

/// The `q` quantile (0 to 1) of `times`, nearest rank; sorts them. Benchmarks time at
/// least one run, so `times` is never empty.
pub fn quantile(times: &mut [f64], q: f64) -> f64 {
    times.sort_by(f64::total_cmp);
    times[((times.len() - 1) as f64 * q).round() as usize]
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn nearest_rank_of_the_sorted_times() {
        let mut t = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(quantile(&mut t, 0.5), 3.0);
        assert_eq!(quantile(&mut t, 0.0), 1.0);
        assert_eq!(quantile(&mut t, 0.99), 5.0);
        assert_eq!(quantile(&mut [7.0, 9.0], 0.5), 9.0);
        assert_eq!(quantile(&mut [7.0], 0.99), 7.0);
    }
}
