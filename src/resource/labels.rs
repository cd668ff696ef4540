//! Kubernetes label keys and values, as the API server checks them
//! (k8s.io/apimachinery/pkg/util/validation: IsQualifiedName, IsValidLabelValue): a key is
//! an optional DNS-subdomain prefix and '/', then a name of at most 63 characters that
//! starts and ends with a letter or digit and holds letters, digits, '-', '_' and '.'; a
//! value is empty or such a name.

fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
                && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

pub fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if prefix.is_some_and(|p| !is_dns_subdomain(p)) || !is_name(name) {
        return Err(format!("{key:?} is not a label key"));
    }
    Ok(())
}

pub fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_name(value) {
        Ok(())
    } else {
        Err(format!("{value:?} is not a label value"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_as_the_api_server_has_them() {
        for ok in ["team", "app.kubernetes.io/name", "a_b-c.d", "x"] {
            assert!(check_key(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "Bad Key",
            "UPPER.example/x",
            "a/b/c",
            &"x".repeat(64),
        ] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
        assert!(check_value("").is_ok() && check_value("gold").is_ok());
        assert!(check_value("not a value").is_err() && check_value("-x").is_err());
    }
}
