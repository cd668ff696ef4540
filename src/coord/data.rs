//! The digits dataset (8x8 images, 64 pixels 0..16, label 0..9) and its fixed split:
//! every fifth row is held out for evaluation, the rest is the training set whose
//! indices the master hands out in chunks.

use super::error::CoordError;
use flate2::read::GzDecoder;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

pub const FEATURES: usize = 64;
pub const CLASSES: usize = 10;
const PIXEL_MAX: f32 = 16.0;

#[derive(Clone, Debug)]
pub struct Dataset {
    /// Row-major, `FEATURES` per row, scaled to [0, 1].
    pub features: Vec<f32>,
    pub labels: Vec<u8>,
}

/// Indices into a [`Dataset`]: training rows and held-out rows.
#[derive(Clone, Debug)]
pub struct Split {
    pub train: Vec<usize>,
    pub held_out: Vec<usize>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.features[i * FEATURES..(i + 1) * FEATURES]
    }

    /// Reads a CSV (gzipped when the name ends in `.gz`).
    pub fn load(path: &Path) -> Result<Dataset, CoordError> {
        let file = std::fs::File::open(path).map_err(|e| CoordError::io(path, e))?;
        let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(GzDecoder::new(file))
        } else {
            Box::new(file)
        };
        Self::parse(BufReader::new(reader), path)
    }

    pub fn parse(reader: impl BufRead, path: &Path) -> Result<Dataset, CoordError> {
        let bad = |line: usize, message: String| CoordError::Data {
            path: path.to_path_buf(),
            message: format!("line {line}: {message}"),
        };
        let mut features = Vec::new();
        let mut labels = Vec::new();
        for (n, line) in reader.lines().enumerate() {
            let line_no = n + 1;
            let line = line.map_err(|e| bad(line_no, e.to_string()))?;
            if line.trim().is_empty() {
                continue;
            }
            let cells: Vec<&str> = line.split(',').collect();
            if cells.len() != FEATURES + 1 {
                return Err(bad(
                    line_no,
                    format!("{} columns, expected {}", cells.len(), FEATURES + 1),
                ));
            }
            for (c, cell) in cells[..FEATURES].iter().enumerate() {
                let v: f32 = cell
                    .trim()
                    .parse()
                    .map_err(|_| bad(line_no, format!("pixel {c} is not a number: {cell:?}")))?;
                if !(0.0..=PIXEL_MAX).contains(&v) {
                    return Err(bad(line_no, format!("pixel {c} = {v} outside 0..16")));
                }
                features.push(v / PIXEL_MAX);
            }
            let label: u8 = cells[FEATURES]
                .trim()
                .parse()
                .ok()
                .filter(|&l: &u8| usize::from(l) < CLASSES)
                .ok_or_else(|| bad(line_no, format!("label {:?} not in 0..9", cells[FEATURES])))?;
            labels.push(label);
        }
        if labels.is_empty() {
            return Err(CoordError::Data {
                path: path.to_path_buf(),
                message: "no rows".into(),
            });
        }
        Ok(Dataset { features, labels })
    }

    pub fn split(&self) -> Split {
        let (held_out, train) = (0..self.len()).partition(|i| i % 5 == 4);
        Split { train, held_out }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(label: &str) -> String {
        let mut cells = vec!["3"; FEATURES];
        cells.push(label);
        cells.join(",")
    }

    #[test]
    fn parses_and_splits_one_in_five() {
        let text = (0..10)
            .map(|i| row(&(i % 10).to_string()))
            .collect::<Vec<_>>()
            .join("\n");
        let d = Dataset::parse(text.as_bytes(), Path::new("t.csv")).expect("parses");
        assert_eq!(d.len(), 10);
        assert!((d.row(0)[0] - 3.0 / 16.0).abs() < 1e-6);
        let s = d.split();
        assert_eq!(s.held_out, vec![4, 9]);
        assert_eq!(s.train.len(), 8);
    }

    #[test]
    fn bad_rows_name_the_line_and_cell() {
        let err = Dataset::parse(
            format!("{}\n{}", row("1"), row("12")).as_bytes(),
            Path::new("t.csv"),
        )
        .expect_err("label 12 rejected");
        assert!(
            err.to_string().contains("line 2") && err.to_string().contains("label"),
            "{err}"
        );
        let err = Dataset::parse("1,2,3\n".as_bytes(), Path::new("t.csv")).expect_err("short row");
        assert!(err.to_string().contains("columns"), "{err}");
    }
}
