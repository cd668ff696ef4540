//! Kubernetes timestamps as the model's clock: seconds since the Unix epoch, as `f64`
//! (the planner and the control API never need finer than a millisecond).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub fn seconds(t: &Time) -> f64 {
    t.0.as_millisecond() as f64 / 1000.0
}
