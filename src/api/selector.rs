//! Kubernetes label selectors, as `kubectl get -l` takes them: requirements separated by
//! commas, all of which must hold. The syntax and meaning follow apimachinery's
//! `labels.Parse` (k8s.io/apimachinery/pkg/labels/selector.go):
//! `key=value` and `key==value` (the label is there with that value), `key!=value` (it is
//! not, or the label is absent), `key in (a,b)`, `key notin (a,b)` (absent also matches),
//! `key` (the label exists) and `!key` (it does not).

//!
//! Each requirement is the model's node-affinity [`Requirement`] (`=` is `In` one value,
//! `!=` is `NotIn` one value), so label matching has one home.

use crate::model::placement::Requirement;
use std::collections::BTreeMap;

fn requirement(key: String, operator: &str, values: Vec<String>) -> Requirement {
    Requirement {
        key,
        operator: operator.into(),
        values,
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector(Vec<Requirement>);

/// Splits on commas outside parentheses.
fn requirements(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

fn check_key(key: &str, whole: &str) -> Result<String, String> {
    if crate::resource::labels::check_key(key).is_err() {
        return Err(format!(
            "label selector {whole:?}: {key:?} is not a label key (a name of letters, digits, \
             '-', '_' and '.', at most 63 characters, with an optional DNS prefix and '/')"
        ));
    }
    Ok(key.to_string())
}

fn check_value(value: &str, whole: &str) -> Result<String, String> {
    if crate::resource::labels::check_value(value).is_err() {
        return Err(format!(
            "label selector {whole:?}: {value:?} is not a label value"
        ));
    }
    Ok(value.to_string())
}

fn values(list: &str, whole: &str) -> Result<Vec<String>, String> {
    let inner = list
        .trim()
        .strip_prefix('(')
        .and_then(|l| l.strip_suffix(')'))
        .ok_or_else(|| format!("label selector {whole:?}: a set is written (a,b)"))?;
    inner
        .split(',')
        .map(|v| check_value(v.trim(), whole))
        .collect()
}

impl Selector {
    /// Parses `text`; the empty selector matches everything.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let mut out = Vec::new();
        if text.trim().is_empty() {
            return Ok(Selector(out));
        }
        for part in requirements(text) {
            let p = part.trim();
            let r = if let Some((k, v)) = p.split_once("!=") {
                let value = check_value(v.trim(), text)?;
                requirement(check_key(k.trim(), text)?, "NotIn", vec![value])
            } else if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
                let value = check_value(v.trim(), text)?;
                requirement(check_key(k.trim(), text)?, "In", vec![value])
            } else if let Some((k, v)) = p.split_once(" notin ") {
                requirement(check_key(k.trim(), text)?, "NotIn", values(v, text)?)
            } else if let Some((k, v)) = p.split_once(" in ") {
                requirement(check_key(k.trim(), text)?, "In", values(v, text)?)
            } else if let Some(k) = p.strip_prefix('!') {
                requirement(check_key(k.trim(), text)?, "DoesNotExist", Vec::new())
            } else {
                requirement(check_key(p, text)?, "Exists", Vec::new())
            };
            out.push(r);
        }
        Ok(Selector(out))
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0
            .iter()
            .all(|r| r.matches(labels.get(&r.key).map(String::as_str)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn each_operator_means_what_kubectl_means() {
        let l = labels(&[("team", "ml"), ("tier", "gold")]);
        let yes = |s: &str| Selector::parse(s).unwrap().matches(&l);
        assert!(yes(""));
        assert!(yes("team=ml") && yes("team==ml") && !yes("team=web"));
        assert!(yes("team!=web") && !yes("team!=ml") && yes("absent!=x"));
        assert!(yes("tier in (gold, silver)") && !yes("tier in (silver)"));
        assert!(yes("tier notin (silver)") && !yes("tier notin (gold)") && yes("absent notin (x)"));
        assert!(yes("team") && !yes("absent") && yes("!absent") && !yes("!team"));
        assert!(yes("team=ml,tier in (gold)") && !yes("team=ml,tier=silver"));
        assert!(yes("example.com/owner notin (x),team"));
    }

    #[test]
    fn bad_selectors_are_refused_by_name() {
        for bad in [
            "team=ml,=x",
            "bad key=1",
            "tier in gold",
            "team=not a value",
        ] {
            let e = Selector::parse(bad).unwrap_err();
            assert!(e.contains("label selector"), "{bad}: {e}");
        }
    }
}
