//! Where in a YAML text a field path like `jobs[1].trainers.min` is written, so that a
//! validation error can name the line. Block style is followed by indentation; a key in a
//! flow mapping (`{ min: 1 }`) is found on its line. Best effort: the deepest segment
//! found wins, and None only when not even the first one is.

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, rest) = part.split_once('[').unwrap_or((part, ""));
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        for idx in rest.split('[') {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                out.push(Segment::Index(i));
            }
        }
    }
    out
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// `key:` at the start of the line's content (after an optional `- `), or inside a flow
/// mapping on the line.
fn has_key(line: &str, key: &str) -> bool {
    let content = line.trim_start().trim_start_matches("- ").trim_start();
    if content.starts_with(&format!("{key}:")) {
        return true;
    }
    line.contains('{')
        && line
            .split(['{', ','])
            .any(|part| part.trim_start().starts_with(&format!("{key}:")))
}

/// 1-based line number of `path` in `text`.
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    // The block the search is confined to: lines [from, to), deeper than `min_indent`.
    let (mut from, mut to) = (0, lines.len());
    let mut found = None;
    let mut parent_indent: Option<usize> = None;
    for seg in segments(path) {
        let within = |i: usize| {
            let l = lines[i];
            !l.trim().is_empty() && !l.trim_start().starts_with('#')
        };
        let hit = match seg {
            Segment::Key(key) => (from..to).find(|&i| {
                within(i)
                    && has_key(lines[i], key)
                    && match parent_indent {
                        None => indent(lines[i]) == 0,
                        Some(p) => indent(lines[i]) > p || i == from,
                    }
            }),
            Segment::Index(n) => {
                let items: Vec<usize> = (from..to)
                    .filter(|&i| within(i) && lines[i].trim_start().starts_with("- "))
                    .collect();
                let item_indent = items.first().map(|&i| indent(lines[i]));
                items
                    .into_iter()
                    .filter(|&i| Some(indent(lines[i])) == item_indent)
                    .nth(n)
            }
        };
        let Some(i) = hit else { break };
        found = Some(i + 1);
        let own = indent(lines[i]);
        // The block under this line: until a line at the same or a shallower indent
        // (a list item's own fields sit at the item's indent + 2).
        let is_item = lines[i].trim_start().starts_with("- ");
        let end = (i + 1..lines.len())
            .find(|&k| {
                within(k)
                    && (indent(lines[k]) < own
                        || (indent(lines[k]) == own
                            && (!is_item || lines[k].trim_start().starts_with("- "))))
            })
            .unwrap_or(lines.len());
        from = i;
        to = end;
        parent_indent = Some(own);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::line_of;

    const TEXT: &str = "name: t
cluster:
  nodes:
    - prefix: a
      count: 2
    - prefix: b
      count: 0
jobs:
  - name: j0
    trainers: { requested: 4, min: 1, max: 8 }
  - name: j1
    submit_s: -5
    trainers:
      min: 9
      max: 8
";

    #[test]
    fn finds_block_flow_and_list_fields() {
        assert_eq!(line_of(TEXT, "name"), Some(1));
        assert_eq!(line_of(TEXT, "cluster.nodes[1].count"), Some(7));
        assert_eq!(line_of(TEXT, "cluster.nodes[0].count"), Some(5));
        assert_eq!(line_of(TEXT, "jobs[0].trainers.min"), Some(10));
        assert_eq!(line_of(TEXT, "jobs[1].submit_s"), Some(12));
        assert_eq!(line_of(TEXT, "jobs[1].trainers.min"), Some(14));
        assert_eq!(line_of(TEXT, "faults[0].node"), None);
    }
}
