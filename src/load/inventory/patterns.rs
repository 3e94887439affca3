//! Host patterns: `all`, `web:db`, `web:&prod`, `all:!db`, `web*`, `~regex`, `--limit`.

use indexmap::IndexSet;

use super::Inventory;

/// The hosts a pattern selects, in inventory order. Unknown names select nothing.
pub fn select(inv: &Inventory, pattern: &str) -> Vec<String> {
    let mut included: IndexSet<String> = IndexSet::new();
    let mut intersections: Vec<IndexSet<String>> = Vec::new();
    let mut excluded: IndexSet<String> = IndexSet::new();
    for term in split_terms(pattern) {
        if let Some(rest) = term.strip_prefix('!') {
            excluded.extend(match_term(inv, rest));
        } else if let Some(rest) = term.strip_prefix('&') {
            intersections.push(match_term(inv, rest).into_iter().collect());
        } else {
            included.extend(match_term(inv, &term));
        }
    }
    inv.hosts
        .keys()
        .filter(|h| included.contains(*h))
        .filter(|h| intersections.iter().all(|set| set.contains(*h)))
        .filter(|h| !excluded.contains(*h))
        .cloned()
        .collect()
}

/// Splits on `:` and `,` (but not inside a `~regex`, and not IPv6-looking names).
fn split_terms(pattern: &str) -> Vec<String> {
    if pattern.trim_start().starts_with('~') {
        return vec![pattern.trim().to_string()];
    }
    pattern
        .split([':', ','])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

fn match_term(inv: &Inventory, term: &str) -> Vec<String> {
    if term == "all" || term == "*" {
        return inv.hosts.keys().cloned().collect();
    }
    if let Some(re) = term.strip_prefix('~') {
        let Ok(re) = regex::Regex::new(re) else {
            return vec![];
        };
        return collect(inv, |name| re.is_match(name));
    }
    if term.contains('*') || term.contains('?') {
        let Ok(glob) = glob::Pattern::new(term) else {
            return vec![];
        };
        return collect(inv, |name| glob.matches(name));
    }
    if inv.groups.contains_key(term) {
        return inv.group_hosts(term);
    }
    if inv.hosts.contains_key(term) {
        return vec![term.to_string()];
    }
    vec![]
}

/// Hosts whose name, or one of whose groups' names, matches.
fn collect(inv: &Inventory, matches: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out: IndexSet<String> = inv.hosts.keys().filter(|h| matches(h)).cloned().collect();
    for group in inv.groups.keys().filter(|g| matches(g)) {
        out.extend(inv.group_hosts(group));
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn inventory() -> Inventory {
        let mut inv = Inventory::new();
        super::super::ini::parse(
            &mut inv,
            "[web]\nweb1\nweb2\n[db]\ndb1\n[prod]\nweb1\ndb1\n",
            Path::new("h"),
        )
        .unwrap();
        inv
    }

    #[test]
    fn set_operations() {
        let inv = inventory();
        assert_eq!(select(&inv, "all"), vec!["web1", "web2", "db1"]);
        assert_eq!(select(&inv, "web:db"), vec!["web1", "web2", "db1"]);
        assert_eq!(select(&inv, "web:&prod"), vec!["web1"]);
        assert_eq!(select(&inv, "all:!db"), vec!["web1", "web2"]);
        assert_eq!(select(&inv, "web*"), vec!["web1", "web2"]);
        assert_eq!(select(&inv, "~db\\d"), vec!["db1"]);
        assert!(select(&inv, "nosuch").is_empty());
    }
}
