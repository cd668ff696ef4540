//! Kubernetes quantities ("500m", "4Gi", "1e9") to ebb's integer units.

use std::fmt;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {value:?} is not a Kubernetes quantity ({why}); write e.g. \"500m\", \"2\" or \"4Gi\"")]
pub struct QuantityError {
    pub field: String,
    pub value: String,
    pub why: &'static str,
}

/// What a quantity counts, which fixes the unit it is returned in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// CPU, returned in millicores (rounded up, as the kubelet does).
    Milli,
    /// Memory or counts, returned in whole units (rounded up).
    Whole,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::Milli => "millicores",
            Unit::Whole => "units",
        })
    }
}

/// Parses `value` into `unit`, saturating at `i64::MAX` (the caller bounds it).
pub fn parse_quantity(field: &str, value: &str, unit: Unit) -> Result<i64, QuantityError> {
    let err = |why| QuantityError {
        field: field.to_string(),
        value: value.to_string(),
        why,
    };
    let text = value.trim();
    if text.is_empty() {
        return Err(err("empty"));
    }
    if text.starts_with('-') {
        return Err(err("negative"));
    }
    let text = text.strip_prefix('+').unwrap_or(text);
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(number_end);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return Err(err("no number"));
    }
    let mantissa: f64 = number.parse().map_err(|_| err("no number"))?;
    let scale: f64 = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp if exp.starts_with(['e', 'E']) => {
            let power: i32 = exp[1..].parse().map_err(|_| err("bad suffix"))?;
            if !(-30..=30).contains(&power) {
                return Err(err("exponent out of range"));
            }
            10f64.powi(power)
        }
        _ => return Err(err("bad suffix")),
    };
    let per_unit = match unit {
        Unit::Milli => 1000.0,
        Unit::Whole => 1.0,
    };
    let amount = (mantissa * scale * per_unit).ceil();
    if !amount.is_finite() || amount >= i64::MAX as f64 {
        return Ok(i64::MAX);
    }
    Ok(amount as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_kubernetes_writes() {
        let cpu = |s| parse_quantity("cpu", s, Unit::Milli).unwrap();
        let mem = |s| parse_quantity("memory", s, Unit::Whole).unwrap();
        assert_eq!(cpu("500m"), 500);
        assert_eq!(cpu("2"), 2000);
        assert_eq!(cpu("0.25"), 250);
        assert_eq!(cpu("1.5"), 1500);
        assert_eq!(cpu("100u"), 1, "rounded up like the kubelet");
        assert_eq!(mem("4Gi"), 4 << 30);
        assert_eq!(mem("128974848"), 128_974_848);
        assert_eq!(mem("129e6"), 129_000_000);
        assert_eq!(mem("123Mi"), 123 << 20);
        assert_eq!(mem("1k"), 1000);
        assert_eq!(mem("+1Ki"), 1024);
    }

    #[test]
    fn refuses_garbage_and_names_the_field() {
        for bad in ["", "-1", "abc", "1Gb", "1..2", ".", "1e99", "5 cores"] {
            let e = parse_quantity("spec.trainers.resources.memory", bad, Unit::Whole)
                .expect_err(bad);
            assert!(e.to_string().contains("spec.trainers.resources.memory"), "{e}");
        }
    }

    #[test]
    fn huge_values_saturate_for_the_caller_to_bound() {
        assert_eq!(parse_quantity("m", "9E", Unit::Milli).unwrap(), i64::MAX);
    }
}
