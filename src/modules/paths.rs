//! Ansible's `type: path` options: a leading `~` or `~user` and `$NAME`/`${NAME}` expanded
//! as Python's `os.path.expanduser`/`os.path.expandvars` do (unset variables and unknown users
//! left as written). Paths the module uses on the target expand there (the remote user's home
//! and environment, the become user's under `become`); controller files (`src:`) expand on
//! the controller.

use super::commands::expand::{expanding_word, expands};
use super::{ModuleCtx, ModuleError};

/// A target path with `~` and `$VARS` expanded on the target. A path with neither is returned
/// as is, without a round trip. The path reaches the shell as one quoted word with only the
/// tilde prefix and the variables active, so nothing in it can run as a command.
pub async fn on_target(ctx: &ModuleCtx<'_>, path: String) -> Result<String, ModuleError> {
    if !expands(&path) {
        return Ok(path);
    }
    let out = ctx
        .run_ok_inline(
            &format!("printf '%s' {}", expanding_word(&path, false)),
            None,
            &format!("expanding the path {path}"),
        )
        .await?;
    String::from_utf8(out.stdout)
        .map_err(|_| ModuleError::Failed(format!("the path {path} expanded to invalid UTF-8")))
}

/// A controller path with `~` and `$VARS` expanded from kiln's own environment.
pub fn on_controller(path: &str) -> String {
    expand_with(path, &|name| std::env::var(name).ok(), &home_of)
}

/// `os.path.expanduser(os.path.expandvars(path))` with the variables and homes looked up by
/// the given functions.
fn expand_with(
    path: &str,
    var: &dyn Fn(&str) -> Option<String>,
    home: &dyn Fn(&str) -> Option<String>,
) -> String {
    let variable =
        regex::Regex::new(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\})")
            .expect("static pattern");
    let expanded = variable.replace_all(path, |found: &regex::Captures| {
        let name = found.get(1).or(found.get(2)).map_or("", |m| m.as_str());
        var(name).unwrap_or_else(|| found[0].to_string())
    });
    let Some(after) = expanded.strip_prefix('~') else {
        return expanded.into_owned();
    };
    let end = after.find('/').unwrap_or(after.len());
    let user = &after[..end];
    let dir = if user.is_empty() {
        var("HOME").or_else(|| home(""))
    } else {
        home(user)
    };
    match dir {
        Some(dir) => {
            let rest = &after[end..];
            // Python strips the home's trailing slash before appending the rest.
            let dir = dir.trim_end_matches('/');
            if dir.is_empty() && rest.is_empty() {
                "/".into()
            } else {
                format!("{dir}{rest}")
            }
        }
        None => expanded.into_owned(),
    }
}

/// The home directory of `user` (the current user for "") from the password database.
fn home_of(user: &str) -> Option<String> {
    use std::ffi::{CStr, CString};
    let name = CString::new(user).ok()?;
    // SAFETY: getpwnam/getpwuid return a pointer into static storage or null; the home is
    // copied out before any other password-database call.
    unsafe {
        let entry = if user.is_empty() {
            libc::getpwuid(libc::getuid())
        } else {
            libc::getpwnam(name.as_ptr())
        };
        if entry.is_null() || (*entry).pw_dir.is_null() {
            return None;
        }
        CStr::from_ptr((*entry).pw_dir)
            .to_str()
            .ok()
            .map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::expand_with;

    fn expand(path: &str) -> String {
        let var = |name: &str| match name {
            "HOME" => Some("/home/me/".to_string()),
            "DIR" => Some("d i r".to_string()),
            _ => None,
        };
        let home = |user: &str| (user == "root").then(|| "/root".to_string());
        expand_with(path, &var, &home)
    }

    #[test]
    fn home_and_variables_expand_as_python_expands_them() {
        assert_eq!(expand("~/x"), "/home/me/x");
        assert_eq!(expand("~"), "/home/me");
        assert_eq!(expand("~root/.ssh"), "/root/.ssh");
        assert_eq!(expand("$HOME/y"), "/home/me//y");
        assert_eq!(expand("/a/${DIR}/$DIR"), "/a/d i r/d i r");
    }

    #[test]
    fn unknown_users_and_unset_variables_stay_as_written() {
        assert_eq!(expand("~nobody-here/x"), "~nobody-here/x");
        assert_eq!(expand("$NOPE/x${NOPE}"), "$NOPE/x${NOPE}");
        assert_eq!(expand("/x/~/$"), "/x/~/$");
        assert_eq!(expand("a$1"), "a$1");
    }
}
