//! The reference trainer's models on the digits data, as flat f32 parameter vectors:
//! softmax regression, or a one-hidden-layer MLP (ReLU). Pure arithmetic, no I/O.

use super::data::{CLASSES, Dataset, FEATURES};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelKind {
    Softmax,
    Mlp,
}

const HIDDEN: usize = 32;

impl ModelKind {
    pub fn params(self) -> usize {
        match self {
            ModelKind::Softmax => CLASSES * FEATURES + CLASSES,
            ModelKind::Mlp => HIDDEN * FEATURES + HIDDEN + CLASSES * HIDDEN + CLASSES,
        }
    }

    /// Uniform init range: zero-ish for the convex softmax, Glorot-like for the MLP.
    pub fn init_scale(self) -> f32 {
        match self {
            ModelKind::Softmax => 0.01,
            ModelKind::Mlp => (6.0 / (FEATURES + HIDDEN) as f32).sqrt(),
        }
    }

    /// Mean cross-entropy over `rows` and its gradient (same layout as `params`).
    pub fn loss_and_grad(self, params: &[f32], data: &Dataset, rows: &[usize]) -> (f64, Vec<f32>) {
        let mut grad = vec![0.0f32; params.len()];
        let mut loss = 0.0f64;
        if rows.is_empty() {
            return (0.0, grad);
        }
        let scale = 1.0 / rows.len() as f32;
        for &r in rows {
            let x = data.row(r);
            let y = usize::from(data.labels[r]);
            loss += match self {
                ModelKind::Softmax => softmax_step(params, x, y, scale, &mut grad),
                ModelKind::Mlp => mlp_step(params, x, y, scale, &mut grad),
            };
        }
        (loss / rows.len() as f64, grad)
    }

    pub fn predict(self, params: &[f32], x: &[f32]) -> usize {
        let logits = match self {
            ModelKind::Softmax => linear(
                &params[..CLASSES * FEATURES],
                &params[CLASSES * FEATURES..],
                x,
                CLASSES,
            ),
            ModelKind::Mlp => {
                let (w1, rest) = params.split_at(HIDDEN * FEATURES);
                let (b1, rest) = rest.split_at(HIDDEN);
                let (w2, b2) = rest.split_at(CLASSES * HIDDEN);
                let h: Vec<f32> = linear(w1, b1, x, HIDDEN)
                    .into_iter()
                    .map(|v| v.max(0.0))
                    .collect();
                linear(w2, b2, &h, CLASSES)
            }
        };
        argmax(&logits)
    }

    pub fn accuracy(self, params: &[f32], data: &Dataset, rows: &[usize]) -> f64 {
        if rows.is_empty() {
            return 0.0;
        }
        let right = rows
            .iter()
            .filter(|&&r| self.predict(params, data.row(r)) == usize::from(data.labels[r]))
            .count();
        right as f64 / rows.len() as f64
    }
}

fn linear(w: &[f32], b: &[f32], x: &[f32], out: usize) -> Vec<f32> {
    let n = x.len();
    (0..out)
        .map(|o| {
            b[o] + w[o * n..(o + 1) * n]
                .iter()
                .zip(x)
                .map(|(a, b)| a * b)
                .sum::<f32>()
        })
        .collect()
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Softmax probabilities in place; returns -log p[y].
fn softmax_xent(logits: &mut [f32], y: usize) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in logits.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in logits.iter_mut() {
        *v /= sum;
    }
    -f64::from(logits[y].max(1e-12)).ln()
}

fn softmax_step(params: &[f32], x: &[f32], y: usize, scale: f32, grad: &mut [f32]) -> f64 {
    let (w, b) = params.split_at(CLASSES * FEATURES);
    let mut p = linear(w, b, x, CLASSES);
    let loss = softmax_xent(&mut p, y);
    p[y] -= 1.0;
    let (gw, gb) = grad.split_at_mut(CLASSES * FEATURES);
    for c in 0..CLASSES {
        let d = p[c] * scale;
        gb[c] += d;
        for (g, xi) in gw[c * FEATURES..(c + 1) * FEATURES].iter_mut().zip(x) {
            *g += d * xi;
        }
    }
    loss
}

fn mlp_step(params: &[f32], x: &[f32], y: usize, scale: f32, grad: &mut [f32]) -> f64 {
    let (w1, rest) = params.split_at(HIDDEN * FEATURES);
    let (b1, rest) = rest.split_at(HIDDEN);
    let (w2, b2) = rest.split_at(CLASSES * HIDDEN);
    let pre = linear(w1, b1, x, HIDDEN);
    let h: Vec<f32> = pre.iter().map(|v| v.max(0.0)).collect();
    let mut p = linear(w2, b2, &h, CLASSES);
    let loss = softmax_xent(&mut p, y);
    p[y] -= 1.0;
    let (gw1, grest) = grad.split_at_mut(HIDDEN * FEATURES);
    let (gb1, grest) = grest.split_at_mut(HIDDEN);
    let (gw2, gb2) = grest.split_at_mut(CLASSES * HIDDEN);
    let mut dh = [0.0f32; HIDDEN];
    for c in 0..CLASSES {
        let d = p[c] * scale;
        gb2[c] += d;
        for k in 0..HIDDEN {
            gw2[c * HIDDEN + k] += d * h[k];
            dh[k] += p[c] * w2[c * HIDDEN + k];
        }
    }
    for k in 0..HIDDEN {
        if pre[k] <= 0.0 {
            continue;
        }
        let d = dh[k] * scale;
        gb1[k] += d;
        for (g, xi) in gw1[k * FEATURES..(k + 1) * FEATURES].iter_mut().zip(x) {
            *g += d * xi;
        }
    }
    loss
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        let mut features = Vec::new();
        let mut labels = Vec::new();
        for i in 0..20 {
            let class = i % CLASSES;
            let mut row = vec![0.0; FEATURES];
            row[class * 6] = 1.0;
            row[class * 6 + 1] = 0.5;
            features.extend(row);
            labels.push(class as u8);
        }
        Dataset { features, labels }
    }

    /// The analytic gradient matches finite differences, for both models.
    #[test]
    fn gradients_match_finite_differences() {
        let data = tiny();
        let rows: Vec<usize> = (0..data.len()).collect();
        for kind in [ModelKind::Softmax, ModelKind::Mlp] {
            let params: Vec<f32> = (0..kind.params())
                .map(|i| ((i * 7919 % 200) as f32 / 1000.0) - 0.1)
                .collect();
            let (_, grad) = kind.loss_and_grad(&params, &data, &rows);
            for &i in &[0usize, 5, kind.params() / 2, kind.params() - 1] {
                let h = 1e-3;
                let mut up = params.clone();
                up[i] += h;
                let mut down = params.clone();
                down[i] -= h;
                let numeric = (kind.loss_and_grad(&up, &data, &rows).0
                    - kind.loss_and_grad(&down, &data, &rows).0)
                    / (2.0 * f64::from(h));
                assert!(
                    (numeric - f64::from(grad[i])).abs() < 2e-3,
                    "{kind:?} param {i}: numeric {numeric} vs {}",
                    grad[i]
                );
            }
        }
    }

    #[test]
    fn plain_gradient_descent_learns_the_toy_set() {
        let data = tiny();
        let rows: Vec<usize> = (0..data.len()).collect();
        let kind = ModelKind::Softmax;
        let mut params = vec![0.0; kind.params()];
        for _ in 0..200 {
            let (_, g) = kind.loss_and_grad(&params, &data, &rows);
            for (p, g) in params.iter_mut().zip(g) {
                *p -= 1.0 * g;
            }
        }
        assert_eq!(kind.accuracy(&params, &data, &rows), 1.0);
    }
}
