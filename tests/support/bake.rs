//! Baking in tests: a kiln home of its own per test, building on the cached systemd test
//! rootfs, with the local apt repository served to the build through kiln's apt proxy.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::http::FileServer;
use super::repo;

/// A kiln home of its own, building on the systemd test rootfs (debootstrap once per machine).
pub struct Bake {
    pub dir: tempfile::TempDir,
    repo_server: FileServer,
}

impl Bake {
    pub fn new() -> Bake {
        // Builds the systemd rootfs and the local apt repository on first use.
        let apt_repo = super::systemd::apt_repo();
        let dir = tempfile::Builder::new()
            .prefix("kiln-bake-")
            .tempdir()
            .unwrap();
        let repo_server = FileServer::start(SocketAddr::from(([127, 0, 0, 1], 0)), apt_repo);
        Bake { dir, repo_server }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn spec(&self, playbook: &str, extra: &str) -> PathBuf {
        let path = self.dir.path().join("web.yml");
        std::fs::write(
            &path,
            format!(
                "name: web\nsource:\n  type: local\n  image_name: \"web-{{{{ timestamp }}}}\"\n  tags: {{Role: web}}\n  apt_sources: [\"deb [trusted=yes] {}/main ./\"]\n{extra}provision:\n  - playbook: {playbook}\n    groups: [web]\npost:\n  manifest: {{output: manifest.json}}\n",
                self.repo_server.url()
            ),
        )
        .unwrap();
        path
    }

    pub fn command(&self, spec: &Path) -> Command {
        let mut command = Command::new(super::kiln());
        command
            .arg("bake")
            .arg(spec)
            .current_dir(repo())
            .env("KILN_HOME", self.home())
            .env("KILN_BASE_ROOTFS", "/var/cache/kiln-test/bookworm-systemd");
        command
    }

    /// Asserts the build left no build directory, and that the instance named in kiln's
    /// output left no network namespace or cgroup.
    pub fn assert_nothing_left(&self, output: &str) {
        let builds: Vec<_> = std::fs::read_dir(self.home().join("builds"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(builds.is_empty(), "build directories left: {builds:?}");
        let netns = instance_name(output);
        assert!(
            !Path::new("/run/netns").join(&netns).exists(),
            "network namespace {netns} left"
        );
        for hierarchy in ["unified", "systemd"] {
            let cg = Path::new("/sys/fs/cgroup")
                .join(hierarchy)
                .join("kiln")
                .join(&netns);
            assert!(!cg.exists(), "cgroup {} left", cg.display());
        }
    }
}

/// The build instance's name, from `==> web: launching build instance NAME at ADDR`.
pub fn instance_name(output: &str) -> String {
    output
        .lines()
        .find_map(|l| l.split("launching build instance ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no instance launched:\n{output}"))
        .to_string()
}

pub fn images(home: &Path) -> Vec<serde_json::Value> {
    std::fs::read_dir(home.join("images"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_to_string(e.path().join("image.json")).ok())
                .map(|t| serde_json::from_str(&t).unwrap())
                .collect()
        })
        .unwrap_or_default()
}

impl Bake {
    /// Bakes `playbook` (on `source_image` when given) with extra `-e` arguments; returns the
    /// new image's id.
    pub fn bake(&self, playbook: &Path, source_image: Option<&str>, extra_vars: &[&str]) -> String {
        let extra = source_image
            .map(|i| format!("  source_image: {i}\n"))
            .unwrap_or_default();
        let spec = self.spec(&playbook.display().to_string(), &extra);
        let mut command = self.command(&spec);
        for e in extra_vars {
            command.args(["-e", e]);
        }
        let out = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("--> web: local:"))
            .unwrap_or_else(|| panic!("no artifact in:\n{stdout}"))
            .trim()
            .to_string()
    }
}
