//! Kubernetes quantities ("500m", "4Gi", "1e9") to ebb's integer units.

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{field}: {value:?} is not a Kubernetes quantity ({why}); write e.g. \"500m\", \"2\" or \"4Gi\""
)]
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
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    // Exact decimal arithmetic: "191450m" must be 191450 millicores, not one more.
    let digits: i128 = format!("{whole}{fraction}")
        .trim_start_matches('0')
        .parse()
        .or_else(|e: std::num::ParseIntError| match e.kind() {
            std::num::IntErrorKind::Empty => Ok(0),
            _ => Err(err("too many digits")),
        })?;
    let mut power10: i32 = -(fraction.len() as i32);
    let mut binary: i128 = 1;
    match suffix {
        "" => {}
        "n" => power10 -= 9,
        "u" => power10 -= 6,
        "m" => power10 -= 3,
        "k" => power10 += 3,
        "M" => power10 += 6,
        "G" => power10 += 9,
        "T" => power10 += 12,
        "P" => power10 += 15,
        "E" => power10 += 18,
        "Ki" => binary = 1 << 10,
        "Mi" => binary = 1 << 20,
        "Gi" => binary = 1 << 30,
        "Ti" => binary = 1 << 40,
        "Pi" => binary = 1 << 50,
        "Ei" => binary = 1 << 60,
        exp if exp.starts_with(['e', 'E']) => {
            let power: i32 = exp[1..].parse().map_err(|_| err("bad suffix"))?;
            if !(-30..=30).contains(&power) {
                return Err(err("exponent out of range"));
            }
            power10 += power;
        }
        _ => return Err(err("bad suffix")),
    }
    if unit == Unit::Milli {
        power10 += 3;
    }
    let saturate = |v: Option<i128>| v.map_or(i64::MAX, |v| i64::try_from(v).unwrap_or(i64::MAX));
    let scaled = digits.checked_mul(binary);
    if power10 >= 0 {
        let factor = 10i128.checked_pow(power10 as u32);
        return Ok(saturate(
            scaled.zip(factor).and_then(|(a, b)| a.checked_mul(b)),
        ));
    }
    let Some(divisor) = 10i128.checked_pow((-power10) as u32) else {
        // Smaller than any unit we count in, but not zero: rounds up to one.
        return Ok(i64::from(digits > 0));
    };
    // Rounded up, as the kubelet does.
    Ok(saturate(scaled.map(|a| (a + divisor - 1) / divisor)))
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
        assert_eq!(mem("1.1"), 2, "rounded up");
        assert_eq!(mem("0"), 0);
    }

    #[test]
    fn whole_millicores_are_exact() {
        // Floating point made 191450m one millicore more than the node has.
        for n in [1i64, 7, 191_450, 63_770, 999_999_999] {
            assert_eq!(
                parse_quantity("cpu", &format!("{n}m"), Unit::Milli).unwrap(),
                n
            );
            assert_eq!(
                parse_quantity("cpu", &format!("{n}"), Unit::Milli).unwrap(),
                n * 1000
            );
            assert_eq!(
                parse_quantity("mem", &format!("{n}Ki"), Unit::Whole).unwrap(),
                n * 1024
            );
        }
        assert_eq!(parse_quantity("cpu", "0.1", Unit::Milli).unwrap(), 100);
        assert_eq!(
            parse_quantity("cpu", "1e-40", Unit::Milli),
            Err(QuantityError {
                field: "cpu".into(),
                value: "1e-40".into(),
                why: "exponent out of range"
            })
        );
    }

    #[test]
    fn refuses_garbage_and_names_the_field() {
        for bad in ["", "-1", "abc", "1Gb", "1..2", ".", "1e99", "5 cores"] {
            let e =
                parse_quantity("spec.trainers.resources.memory", bad, Unit::Whole).expect_err(bad);
            assert!(
                e.to_string().contains("spec.trainers.resources.memory"),
                "{e}"
            );
        }
    }

    #[test]
    fn huge_values_saturate_for_the_caller_to_bound() {
        assert_eq!(parse_quantity("m", "9E", Unit::Milli).unwrap(), i64::MAX);
    }
}
