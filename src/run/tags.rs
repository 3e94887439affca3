//! `--tags` / `--skip-tags` selection, with Ansible's special tags `always`, `never`,
//! `tagged`, `untagged` and `all`.

#[derive(Debug, Clone, Default)]
pub struct TagFilter {
    pub only: Vec<String>,
    pub skip: Vec<String>,
}

impl TagFilter {
    pub fn selects(&self, task_tags: &[String]) -> bool {
        let has = |t: &str| task_tags.iter().any(|x| x == t);
        let listed = |list: &[String], t: &str| list.iter().any(|x| x == t);
        if !self.skip.is_empty() {
            if task_tags.iter().any(|t| listed(&self.skip, t)) {
                return false;
            }
            if listed(&self.skip, "tagged") && !task_tags.is_empty() {
                return false;
            }
            if listed(&self.skip, "untagged") && task_tags.is_empty() {
                return false;
            }
        }
        if has("always") && !listed(&self.skip, "always") {
            return true;
        }
        let explicit = !self.only.is_empty() && !listed(&self.only, "all");
        if has("never")
            && !(explicit
                && task_tags
                    .iter()
                    .any(|t| t != "never" && listed(&self.only, t))
                || listed(&self.only, "never"))
        {
            return false;
        }
        if !explicit {
            return true;
        }
        task_tags.iter().any(|t| listed(&self.only, t))
            || (listed(&self.only, "tagged") && !task_tags.is_empty())
            || (listed(&self.only, "untagged") && task_tags.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ansible_semantics() {
        let none = TagFilter::default();
        assert!(none.selects(&tags(&[])));
        assert!(none.selects(&tags(&["web"])));
        assert!(!none.selects(&tags(&["never"])));
        let web = TagFilter {
            only: tags(&["web"]),
            skip: vec![],
        };
        assert!(web.selects(&tags(&["web"])));
        assert!(!web.selects(&tags(&["db"])));
        assert!(web.selects(&tags(&["always"])));
        assert!(web.selects(&tags(&["never", "web"])));
        let skip = TagFilter {
            only: vec![],
            skip: tags(&["web", "always"]),
        };
        assert!(!skip.selects(&tags(&["web"])));
        assert!(!skip.selects(&tags(&["always"])));
        assert!(skip.selects(&tags(&[])));
    }
}
