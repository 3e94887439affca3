//! Package modules: apt (Debian), dnf/yum (RPM), apk (Alpine), the `package` dispatcher and
//! `package_facts`.

pub mod apk;
pub mod apt;
pub mod apt_repository;
pub mod backend;
pub mod deb822_repository;
pub mod debconf;
pub mod dnf;
pub mod dpkg_divert;
pub mod package;
pub mod package_facts;
pub mod pip;

/// Whether an installed version satisfies a wanted one (`1.22*` globs, as apt pins do).
pub fn version_matches(installed: &str, wanted: &str) -> bool {
    match wanted.strip_suffix('*') {
        Some(prefix) => installed.starts_with(prefix),
        None => installed == wanted,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_globs() {
        assert!(super::version_matches("1.22.1-9", "1.22*"));
        assert!(super::version_matches("1.22.1-9", "1.22.1-9"));
        assert!(!super::version_matches("1.24.0", "1.22*"));
    }
}
