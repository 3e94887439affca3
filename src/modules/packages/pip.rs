//! `pip`: Python packages installed, upgraded or removed with the target's pip (in a
//! virtualenv it creates when asked). What is installed is read once from
//! `pip list --format=freeze`; a pure `plan` decides from the requested names and version
//! specifiers whether pip runs at all, so a second run starts no pip install.

use async_trait::async_trait;

use crate::connection::quote;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Pip;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum State {
    Present,
    Latest,
    Absent,
    ForceReinstall,
}

/// One requested package: its name and an optional version specifier (`==1.0`, `>=2`).
#[derive(Debug, Clone, PartialEq)]
pub struct Requirement {
    pub name: String,
    pub spec: Option<(String, String)>,
}

/// pip compares names case-insensitively, with `-`, `_` and `.` alike.
fn normalize(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

const OPERATORS: &[&str] = &["===", "==", "!=", ">=", "<=", "~=", ">", "<"];

impl Requirement {
    pub fn parse(text: &str, version: Option<&str>) -> Requirement {
        let text = text.trim();
        for op in OPERATORS {
            if let Some(at) = text.find(op) {
                return Requirement {
                    name: text[..at].trim().to_string(),
                    spec: Some((op.to_string(), text[at + op.len()..].trim().to_string())),
                };
            }
        }
        Requirement {
            name: text.to_string(),
            spec: version.map(|v| ("==".to_string(), v.to_string())),
        }
    }

    /// What pip is given: `name==1.0`.
    pub fn arg(&self) -> String {
        match &self.spec {
            Some((op, v)) => format!("{}{op}{v}", self.name),
            None => self.name.clone(),
        }
    }

    /// Whether `installed` satisfies the specifier.
    pub fn satisfied_by(&self, installed: &str) -> bool {
        let Some((op, wanted)) = &self.spec else {
            return true;
        };
        let order = compare(installed, wanted);
        match op.as_str() {
            "==" | "===" => order.is_eq(),
            "!=" => !order.is_eq(),
            ">=" => order.is_ge(),
            "<=" => order.is_le(),
            ">" => order.is_gt(),
            "<" => order.is_lt(),
            // `~=X.Y`: at least X.Y, within X.*.
            _ => {
                let prefix: Vec<&str> = wanted.split('.').collect();
                let head = prefix[..prefix.len().saturating_sub(1).max(1)].join(".");
                order.is_ge() && (installed == head || installed.starts_with(&format!("{head}.")))
            }
        }
    }
}

/// Dotted versions compared part by part, numerically where both parts are numbers.
fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |v: &str| -> Vec<String> {
        let mut p: Vec<String> = v.split('.').map(str::to_string).collect();
        while p.len() > 1 && p.last().is_some_and(|s| s == "0") {
            p.pop();
        }
        p
    };
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(pb.iter()) {
        let o = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => x.cmp(y),
        };
        if !o.is_eq() {
            return o;
        }
    }
    pa.len().cmp(&pb.len())
}

/// `name==version` lines of `pip list --format=freeze`, names normalized.
pub fn parse_freeze(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once("=="))
        .map(|(n, v)| (normalize(n), v.trim().to_string()))
        .collect()
}

/// The requirements pip must be run for (empty: nothing to do).
pub fn plan(state: State, wanted: &[Requirement], installed: &[(String, String)]) -> Vec<String> {
    let version_of = |name: &str| {
        installed
            .iter()
            .find(|(n, _)| *n == normalize(name))
            .map(|(_, v)| v.as_str())
    };
    wanted
        .iter()
        .filter(|r| match (state, version_of(&r.name)) {
            (State::Present, Some(v)) => !r.satisfied_by(v),
            (State::Absent, v) => v.is_some(),
            _ => true,
        })
        .map(|r| match state {
            State::Absent => r.name.clone(),
            _ => r.arg(),
        })
        .collect()
}

#[async_trait]
impl Module for Pip {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let names = args.list(&["name"])?;
        let version = args.str(&["version"])?;
        let state = match args
            .choice(
                "state",
                &["present", "latest", "absent", "forcereinstall"],
                "present",
            )?
            .as_str()
        {
            "latest" => State::Latest,
            "absent" => State::Absent,
            "forcereinstall" => State::ForceReinstall,
            _ => State::Present,
        };
        let requirements = args.str(&["requirements"])?;
        let virtualenv = args.str(&["virtualenv"])?;
        let venv_command = args
            .str(&["virtualenv_command"])?
            .unwrap_or_else(|| "virtualenv".into());
        let venv_python = args.str(&["virtualenv_python"])?;
        let site_packages = args.bool("virtualenv_site_packages", false)?;
        let extra_args = args.str(&["extra_args"])?.unwrap_or_default();
        let executable = args.str(&["executable"])?;
        let chdir = args.str(&["chdir"])?;
        let editable = args.bool("editable", false)?;
        args.ignore(&["umask", "break_system_packages"]);
        args.finish()?;
        if names.is_empty() && requirements.is_none() {
            return Err(ModuleError::Args(
                "pip: one of the following is required: name, requirements".into(),
            ));
        }
        if version.is_some() && names.len() > 1 {
            return Err(ModuleError::Failed(
                "'version' argument is ambiguous when installing multiple package distributions. Please specify version restrictions next to each package in 'name' argument.".into(),
            ));
        }
        let wanted: Vec<Requirement> = names
            .iter()
            .map(|n| Requirement::parse(n, version.as_deref()))
            .collect();

        let cd = chdir
            .as_deref()
            .map(|d| format!("cd {} && ", quote(d)))
            .unwrap_or_default();
        let pip = match (&executable, &virtualenv) {
            (Some(exe), _) => quote(exe),
            (None, Some(env)) => quote(&format!("{env}/bin/pip")),
            (None, None) => "\"$(command -v pip3 || command -v pip)\"".into(),
        };
        let mut result = ModuleResult::changed(false)
            .with("name", minijinja::Value::from_iter(names.iter().cloned()))
            .with(
                "version",
                version
                    .clone()
                    .map_or(minijinja::Value::from(()), Into::into),
            )
            .with("state", format!("{state:?}").to_lowercase())
            .with(
                "requirements",
                requirements
                    .clone()
                    .map_or(minijinja::Value::from(()), Into::into),
            )
            .with(
                "virtualenv",
                virtualenv
                    .clone()
                    .map_or(minijinja::Value::from(()), Into::into),
            );

        // A virtualenv is created first when missing (its pip then reports nothing installed).
        let mut venv_missing = false;
        if let Some(env) = &virtualenv {
            let probe = format!(
                "[ -e {} ] && echo yes; true",
                quote(&format!("{env}/bin/activate"))
            );
            venv_missing = ctx.run_ok(&probe, None, "pip").await?.stdout_text().trim() != "yes";
            if venv_missing {
                result.changed = true;
                if ctx.check_mode {
                    return Ok(result);
                }
                let is_venv = venv_command.contains("-m venv") || venv_command.contains("pyvenv");
                let mut create = venv_command.clone();
                if site_packages {
                    create.push_str(" --system-site-packages");
                }
                if let (Some(py), false) = (&venv_python, is_venv) {
                    create.push_str(&format!(" -p{}", quote(py)));
                }
                let out = ctx
                    .run(&format!("{cd}{create} {}", quote(env)), None)
                    .await?;
                if out.rc != 0 {
                    return Err(result
                        .with("cmd", format!("{create} {env}"))
                        .with("stdout", out.stdout_text())
                        .with("stderr", out.stderr_text())
                        .fail(format!(
                            "Failed to create the virtualenv {env}: {}",
                            out.stderr_text().trim()
                        )));
                }
            }
        }

        let freeze = format!("{cd}k_pip={pip}; [ -x \"$k_pip\" ] || {{ echo nopip; exit 0; }}; \"$k_pip\" list --format=freeze 2>/dev/null; true");
        let before = ctx.run_ok(&freeze, None, "pip list").await?.stdout_text();
        if before.lines().any(|l| l == "nopip") {
            return Err(ModuleError::Failed(
                "Unable to find any of pip3, pip to use.  pip needs to be installed.".into(),
            ));
        }
        let installed = parse_freeze(&before);
        let todo = plan(state, &wanted, &installed);
        if todo.is_empty() && requirements.is_none() {
            return Ok(result);
        }
        let mut cmd = match state {
            State::Absent => "uninstall -y".to_string(),
            State::Latest => "install -U".to_string(),
            State::ForceReinstall => "install -U --force-reinstall".to_string(),
            State::Present => "install".to_string(),
        };
        if !extra_args.is_empty() {
            cmd.push(' ');
            cmd.push_str(&extra_args);
        }
        if let Some(req) = &requirements {
            cmd.push_str(&format!(" -r {}", quote(req)));
        }
        for r in &todo {
            if editable {
                cmd.push_str(" -e");
            }
            cmd.push(' ');
            cmd.push_str(&quote(r));
        }
        result = result.with("cmd", format!("pip {cmd}"));
        if ctx.check_mode {
            result.changed = true;
            return Ok(result);
        }
        let out = ctx.run(&format!("{cd}{pip} {cmd}"), None).await?;
        result = result
            .with("stdout", out.stdout_text())
            .with("stderr", out.stderr_text());
        if out.rc != 0 {
            let msg = format!(
                "stdout: {}\n\n:stderr: {}",
                out.stdout_text(),
                out.stderr_text()
            );
            return Err(result.fail(msg));
        }
        let after = ctx.run_ok(&freeze, None, "pip list").await?.stdout_text();
        result.changed =
            venv_missing || state == State::ForceReinstall || parse_freeze(&after) != installed;
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FREEZE: &str = "kiln_demo==1.0\nrequests==2.28.1\npip==23.0.1\n";

    fn reqs(names: &[&str]) -> Vec<Requirement> {
        names.iter().map(|n| Requirement::parse(n, None)).collect()
    }

    #[test]
    fn names_and_specifiers_are_split() {
        assert_eq!(
            Requirement::parse("Django>=4.2", None),
            Requirement {
                name: "Django".into(),
                spec: Some((">=".into(), "4.2".into()))
            }
        );
        assert_eq!(Requirement::parse("flask", Some("2.0")).arg(), "flask==2.0");
    }

    #[test]
    fn satisfied_packages_need_no_pip_run() {
        let installed = parse_freeze(FREEZE);
        assert!(plan(
            State::Present,
            &reqs(&["kiln-demo", "Requests>=2.0"]),
            &installed
        )
        .is_empty());
        assert_eq!(
            plan(State::Present, &reqs(&["kiln-demo==2.0"]), &installed),
            ["kiln-demo==2.0"]
        );
        assert_eq!(
            plan(State::Present, &reqs(&["flask"]), &installed),
            ["flask"]
        );
        assert_eq!(
            plan(State::Absent, &reqs(&["flask", "Kiln.Demo"]), &installed),
            ["Kiln.Demo"]
        );
        assert_eq!(
            plan(State::Latest, &reqs(&["requests"]), &installed),
            ["requests"]
        );
    }

    #[test]
    fn versions_compare_numerically() {
        let r = |s: &str| Requirement::parse(s, None);
        assert!(r("a>=1.10").satisfied_by("1.10.0"));
        assert!(!r("a>=1.10").satisfied_by("1.9"));
        assert!(r("a<2").satisfied_by("1.99"));
        assert!(r("a~=1.4").satisfied_by("1.7"));
        assert!(!r("a~=1.4").satisfied_by("2.0"));
        assert!(r("a!=1.0").satisfied_by("1.1"));
    }
}
