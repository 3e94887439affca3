//! `ufw` (community.general): the Uncomplicated Firewall driven through its own CLI, as the
//! module drives it: `ufw status verbose` and the `### tuple` lines of its rule files before
//! and after, one `ufw` command per option (`state`, `default`, `rule`, `logging`), and
//! `--dry-run` in check mode, whose rules are compared with the saved ones.

use async_trait::async_trait;
use regex::Regex;

use crate::connection::quote;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Ufw;

const RULE_FILES: &[&str] = &[
    "/lib/ufw/user.rules",
    "/lib/ufw/user6.rules",
    "/etc/ufw/user.rules",
    "/etc/ufw/user6.rules",
    "/var/lib/ufw/user.rules",
    "/var/lib/ufw/user6.rules",
];

const IPV4: &str =
    r"((25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}[0-9])\.){3,3}(25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}[0-9])";

const IPV6: &str = concat!(
    r"(([0-9a-fA-F]{1,4}:){7,7}[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,7}:",
    r"|([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,5}",
    r"(:[0-9a-fA-F]{1,4}){1,2}|([0-9a-fA-F]{1,4}:){1,4}(:[0-9a-fA-F]{1,4})",
    r"{1,3}|([0-9a-fA-F]{1,4}:){1,3}(:[0-9a-fA-F]{1,4}){1,4}|([0-9a-fA-F]",
    r"{1,4}:){1,2}(:[0-9a-fA-F]{1,4}){1,5}|[0-9a-fA-F]{1,4}:((:[0-9a-fA-F]",
    r"{1,4}){1,6})|:((:[0-9a-fA-F]{1,4}){1,7}|:)|fe80:(:[0-9a-fA-F]{0,4})",
    r"{0,4}%[0-9a-zA-Z]{1,}|::(ffff(:0{1,4}){0,1}:){0,1}((25[0-5]|(2[0-4]",
    r"|1{0,1}[0-9]){0,1}[0-9])\.){3,3}(25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}",
    r"[0-9])|([0-9a-fA-F]{1,4}:){1,4}:((25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}",
    r"[0-9])\.){3,3}(25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}[0-9]))"
);

/// One `ufw` invocation: the text the module reports in `commands`, and its words.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Invocation {
    shown: Vec<String>,
    words: Vec<String>,
}

impl Invocation {
    fn new(program: &str) -> Self {
        Self {
            shown: vec![program.into()],
            words: vec![program.into()],
        }
    }
    /// Adds `shown` to the reported text and `words` to the command.
    fn push(&mut self, shown: String, words: &[&str]) {
        self.shown.push(shown);
        self.words.extend(words.iter().map(|w| w.to_string()));
    }
    fn word(&mut self, word: &str) {
        self.push(word.into(), &[word]);
    }
    pub fn shown(&self) -> String {
        self.shown.join(" ")
    }
    fn script(&self) -> String {
        let words: Vec<String> = self.words.iter().map(|w| quote(w)).collect();
        format!("LANG=C {}", words.join(" "))
    }
}

/// The `rule` option and the options that shape it.
#[derive(Debug, Default, Clone)]
pub struct RuleSpec {
    pub rule: String,
    pub route: bool,
    pub delete: bool,
    pub insert: Option<i64>,
    pub direction: Option<String>,
    pub interface: Option<String>,
    pub interface_in: Option<String>,
    pub interface_out: Option<String>,
    pub log: bool,
    pub from_ip: String,
    pub from_port: Option<String>,
    pub to_ip: String,
    pub to_port: Option<String>,
    pub proto: Option<String>,
    pub name: Option<String>,
    pub comment: Option<String>,
}

/// `ufw [--dry-run] [route] [delete | insert N] RULE [DIR] [on IF] … [comment C]`, the
/// module's long form (`insert` already resolved to a number or dropped).
pub fn rule_invocation(ufw: &str, dry_run: bool, spec: &RuleSpec) -> Invocation {
    let mut cmd = Invocation::new(ufw);
    if dry_run {
        cmd.word("--dry-run");
    }
    if spec.route {
        cmd.word("route");
    }
    if spec.delete {
        cmd.word("delete");
    } else if let Some(n) = spec.insert {
        let n = n.to_string();
        cmd.push(format!("insert {n}"), &["insert", &n]);
    }
    cmd.word(&spec.rule);
    if let Some(d) = &spec.direction {
        cmd.word(d);
    }
    if let Some(i) = &spec.interface {
        cmd.push(format!("on {i}"), &["on", i]);
    }
    if let Some(i) = &spec.interface_in {
        cmd.push(format!("in on {i}"), &["in", "on", i]);
    }
    if let Some(i) = &spec.interface_out {
        cmd.push(format!("out on {i}"), &["out", "on", i]);
    }
    if spec.log {
        cmd.word("log");
    }
    let tail = [
        ("from", Some(&spec.from_ip)),
        ("port", spec.from_port.as_ref()),
        ("to", Some(&spec.to_ip)),
        ("port", spec.to_port.as_ref()),
        ("proto", spec.proto.as_ref()),
    ];
    for (word, value) in tail {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            cmd.push(format!("{word} {v}"), &[word, v]);
        }
    }
    if let Some(app) = &spec.name {
        cmd.push(format!("app '{app}'"), &["app", app]);
    }
    if let Some(c) = &spec.comment {
        cmd.push(format!("comment '{c}'"), &["comment", c]);
    }
    cmd
}

/// Whether `enabled`/`disabled` changes a firewall whose `status verbose` is `status`.
pub fn state_changes(wanted: &str, status: &str) -> bool {
    // "active" would also match "inactive", hence the space.
    let active = status.contains(" active");
    match wanted {
        "reloaded" | "reset" => true,
        "enabled" => !active,
        _ => active,
    }
}

/// Whether `logging: wanted` changes the `Logging:` line of `status verbose`.
pub fn logging_changes(wanted: &str, status: &str) -> bool {
    let re = Regex::new(r"Logging: (on|off)(?: \(([a-z]+)\))?").expect("static pattern");
    let Some(found) = re.captures(status) else {
        return true;
    };
    let on_off = found.get(1).map_or("", |m| m.as_str());
    let level = found.get(2).map(|m| m.as_str());
    if wanted != "off" {
        on_off == "off" || (wanted != "on" && Some(wanted) != level)
    } else {
        on_off != "off"
    }
}

/// Whether `default: wanted` (for `direction`) changes the `Default:` line.
pub fn default_changes(wanted: &str, direction: Option<&str>, status: &str) -> bool {
    let re = Regex::new(
        r"Default: (deny|allow|reject) \(incoming\), (deny|allow|reject) \(outgoing\), (deny|allow|reject|disabled) \(routed\)",
    )
    .expect("static pattern");
    let Some(found) = re.captures(status) else {
        return true;
    };
    let group = match direction {
        Some("outgoing") => 2,
        Some("routed") => 3,
        _ => 1,
    };
    let current = found.get(group).map_or("", |m| m.as_str());
    current != wanted && current != "disabled"
}

fn lines_with(content: &str, keep: impl Fn(&str) -> bool) -> String {
    content.split_inclusive('\n').filter(|l| keep(l)).collect()
}

/// Whether a dry run's output shows rules other than the saved `### tuple` lines (the
/// module's check-mode comparison, by address family when the rule names one).
pub fn dry_run_changes(spec: &RuleSpec, saved: &str, dry: &str) -> bool {
    let skipping = dry.lines().filter(|l| l.contains("Skipping")).count();
    if skipping > 0 && skipping == dry.lines().count() {
        return false;
    }
    let dry = lines_with(dry, |l| l.starts_with("### tuple"));
    let v4 = Regex::new(IPV4).expect("static pattern");
    let v6 = Regex::new(IPV6).expect("static pattern");
    let starts = |re: &Regex, ip: &str| re.find(ip).is_some_and(|m| m.start() == 0);
    if starts(&v4, &spec.from_ip) || starts(&v4, &spec.to_ip) {
        lines_with(saved, |l| v4.is_match(l)) != lines_with(&dry, |l| v4.is_match(l))
    } else if starts(&v6, &spec.from_ip) || starts(&v6, &spec.to_ip) {
        lines_with(saved, |l| v6.is_match(l)) != lines_with(&dry, |l| v6.is_match(l))
    } else {
        saved != dry
    }
}

/// The rule number `insert` resolves to against `ufw status numbered` (None: append, as
/// ufw refuses a number past its last rule).
pub fn insert_position(insert: i64, relative_to: &str, numbered: &str) -> Option<i64> {
    if relative_to == "zero" {
        return Some(insert);
    }
    let re = Regex::new(r"^\[ *([0-9]+)\] ").expect("static pattern");
    let rules: Vec<(i64, bool)> = numbered
        .lines()
        .filter_map(|l| {
            let n = re.captures(l)?.get(1)?.as_str().parse().ok()?;
            Some((n, l.contains("(v6)")))
        })
        .collect();
    let last = rules.iter().map(|r| r.0).max().unwrap_or(0);
    let last_v4 = rules.iter().filter(|r| !r.1).map(|r| r.0).max();
    let has_v6 = rules.iter().any(|r| r.1);
    let base = match relative_to {
        "first-ipv4" => 1,
        "last-ipv4" => last_v4.unwrap_or(1),
        "first-ipv6" => last_v4.map_or(1, |n| n + 1),
        _ if has_v6 => last,
        _ => last + 1,
    };
    let at = insert + base;
    (at <= last).then_some(at)
}

fn one_of(args: &mut Args, keys: &[&str], choices: &[&str]) -> Result<Option<String>, ModuleError> {
    match args.str(keys)? {
        None => Ok(None),
        Some(v) if choices.contains(&v.as_str()) => Ok(Some(v)),
        Some(v) => Err(ModuleError::Args(format!(
            "ufw: value of {} must be one of: {}, got: {v}",
            keys[0],
            choices.join(", ")
        ))),
    }
}

/// The separator between the probe's two outputs.
const SPLIT: &str = "--kiln-ufw-rules--";

#[async_trait]
impl Module for Ufw {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let state = one_of(
            &mut args,
            &["state"],
            &["enabled", "disabled", "reloaded", "reset"],
        )?;
        let default = one_of(
            &mut args,
            &["default", "policy"],
            &["allow", "deny", "reject"],
        )?;
        let logging = one_of(
            &mut args,
            &["logging"],
            &["full", "high", "low", "medium", "off", "on"],
        )?;
        let direction = one_of(
            &mut args,
            &["direction"],
            &["in", "incoming", "out", "outgoing", "routed"],
        )?;
        let rule = one_of(&mut args, &["rule"], &["allow", "deny", "limit", "reject"])?;
        let relative_to = args.choice(
            "insert_relative_to",
            &["zero", "first-ipv4", "last-ipv4", "first-ipv6", "last-ipv6"],
            "zero",
        )?;
        let proto = one_of(
            &mut args,
            &["proto", "protocol"],
            &[
                "ah", "any", "esp", "ipv6", "tcp", "udp", "gre", "igmp", "vrrp",
            ],
        )?;
        let mut spec = RuleSpec {
            rule: rule.clone().unwrap_or_default(),
            route: args.bool("route", false)?,
            delete: args.bool("delete", false)?,
            insert: args.int("insert")?,
            direction: direction.clone(),
            interface: args.str(&["interface", "if"])?,
            interface_in: args.str(&["interface_in", "if_in"])?,
            interface_out: args.str(&["interface_out", "if_out"])?,
            log: args.bool("log", false)?,
            from_ip: args
                .str(&["from_ip", "from", "src"])?
                .unwrap_or_else(|| "any".into()),
            from_port: args.str(&["from_port"])?,
            to_ip: args
                .str(&["to_ip", "dest", "to"])?
                .unwrap_or_else(|| "any".into()),
            to_port: args.str(&["to_port", "port"])?,
            proto,
            name: args.str(&["name", "app"])?,
            comment: args.str(&["comment"])?,
        };
        args.finish()?;
        let fail = |msg: &str| Err(ModuleError::Args(format!("ufw: {msg}")));
        if state.is_none() && default.is_none() && rule.is_none() && logging.is_none() {
            return fail("one of the following is required: state, default, rule, logging");
        }
        let exclusive = [spec.name.is_some(), spec.proto.is_some(), logging.is_some()];
        if exclusive.iter().filter(|x| **x).count() > 1 {
            return fail("parameters are mutually exclusive: name|proto|logging");
        }
        if direction.is_some() && (spec.interface_in.is_some() || spec.interface_out.is_some()) {
            return fail("parameters are mutually exclusive: direction|interface_in|interface_out");
        }
        if spec.interface.is_some() && direction.is_none() {
            return fail("missing parameter(s) required by 'interface': direction");
        }

        let found = ctx.run("command -v ufw && command -v grep", None).await?;
        let bins: Vec<String> = found.stdout_text().lines().map(str::to_string).collect();
        let [ufw, grep] = bins.as_slice() else {
            return Err(ModuleError::Failed(
                "Failed to find required executable \"ufw\" in paths: /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ));
        };
        let status_cmd = format!("{ufw} status verbose");
        let rules_cmd = format!("{grep} -h '^### tuple' {}", RULE_FILES.join(" "));
        let rules_script = format!(
            "LANG=C grep -h '^### tuple' {} 2>/dev/null",
            RULE_FILES.join(" ")
        );
        let probe = format!(
            "LANG=C {} status verbose || exit; echo {SPLIT}; {rules_script}; true",
            quote(ufw)
        );
        let out = ctx.run_ok(&probe, None, "ufw status").await?.stdout_text();
        let (pre_state, pre_rules) = out
            .split_once(&format!("{SPLIT}\n"))
            .unwrap_or((out.as_str(), ""));
        let (pre_state, pre_rules) = (pre_state.to_string(), pre_rules.to_string());
        let mut commands = vec![status_cmd.clone(), rules_cmd];
        let mut changed = false;
        let check = ctx.check_mode;
        let base = || {
            let mut cmd = Invocation::new(ufw);
            if check {
                cmd.word("--dry-run");
            }
            cmd
        };
        let execute = |cmd: Invocation, commands: &mut Vec<String>| {
            commands.push(cmd.shown());
            let script = cmd.script();
            async move {
                let out = ctx.run(&script, None).await?;
                if out.rc != 0 {
                    let err = out.stderr_text();
                    let msg = if err.trim().is_empty() {
                        out.stdout_text()
                    } else {
                        err
                    };
                    return Err(ModuleError::Failed(msg));
                }
                Ok(out.stdout_text())
            }
        };

        if let Some(value) = &state {
            if matches!(value.as_str(), "reloaded" | "reset") {
                changed = true;
            }
            if check {
                changed |= state_changes(value, &pre_state);
            } else {
                let verb = match value.as_str() {
                    "enabled" => "enable",
                    "disabled" => "disable",
                    "reloaded" => "reload",
                    _ => "reset",
                };
                let mut cmd = base();
                cmd.word("-f");
                cmd.word(verb);
                execute(cmd, &mut commands).await?;
            }
        }
        if let Some(value) = &default {
            if !matches!(
                direction.as_deref(),
                None | Some("outgoing" | "incoming" | "routed")
            ) {
                return Err(ModuleError::Failed("For default, direction must be one of \"outgoing\", \"incoming\" and \"routed\", or direction must not be specified.".into()));
            }
            if check {
                changed |= default_changes(value, direction.as_deref(), &pre_state);
            } else {
                let mut cmd = base();
                cmd.word("default");
                cmd.word(value);
                if let Some(d) = &direction {
                    cmd.word(d);
                }
                execute(cmd, &mut commands).await?;
            }
        }
        if rule.is_some() {
            if !matches!(direction.as_deref(), None | Some("in" | "out")) {
                return Err(ModuleError::Failed("For rules, direction must be one of \"in\" and \"out\", or direction must not be specified.".into()));
            }
            if !spec.route && spec.interface_in.is_some() && spec.interface_out.is_some() {
                return Err(ModuleError::Failed(
                    "Only route rules can combine interface_in and interface_out".into(),
                ));
            }
            if let (Some(n), false) = (spec.insert, spec.delete) {
                let numbered = if relative_to == "zero" {
                    String::new()
                } else {
                    ctx.run(&format!("LANG=C {} status numbered", quote(ufw)), None)
                        .await?
                        .stdout_text()
                };
                spec.insert = insert_position(n, &relative_to, &numbered);
            } else {
                spec.insert = None;
            }
            let dry = execute(rule_invocation(ufw, check, &spec), &mut commands).await?;
            if check {
                changed |= dry_run_changes(&spec, &pre_rules, &dry);
            }
        }
        if let Some(value) = &logging {
            changed |= logging_changes(value, &pre_state);
            if !check {
                let mut cmd = base();
                cmd.word("logging");
                cmd.word(value);
                execute(cmd, &mut commands).await?;
            }
        }
        if check {
            return Ok(ModuleResult::changed(changed).with("commands", commands));
        }
        let post = ctx
            .run_ok(
                &format!(
                    "LANG=C {} status verbose; echo {SPLIT}; {rules_script}; true",
                    quote(ufw)
                ),
                None,
                "ufw status",
            )
            .await?
            .stdout_text();
        let (post_state, post_rules) = post
            .split_once(&format!("{SPLIT}\n"))
            .unwrap_or((post.as_str(), ""));
        commands.push(status_cmd);
        if !changed {
            commands.push(format!("{grep} -h '^### tuple' {}", RULE_FILES.join(" ")));
            changed = pre_state != post_state || pre_rules != post_rules;
        }
        Ok(ModuleResult::changed(changed)
            .with("commands", commands)
            .with_msg(post_state.trim_end()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTIVE: &str = "Status: active\nLogging: on (low)\nDefault: deny (incoming), allow (outgoing), disabled (routed)\nNew profiles: skip\n";

    #[test]
    fn rules_are_written_in_the_long_form() {
        let spec = RuleSpec {
            rule: "allow".into(),
            direction: Some("in".into()),
            interface: Some("eth0".into()),
            from_ip: "10.0.0.0/8".into(),
            to_ip: "any".into(),
            to_port: Some("22".into()),
            proto: Some("tcp".into()),
            comment: Some("ssh from lan".into()),
            insert: Some(1),
            ..RuleSpec::default()
        };
        let cmd = rule_invocation("/usr/sbin/ufw", true, &spec);
        assert_eq!(
            cmd.shown(),
            "/usr/sbin/ufw --dry-run insert 1 allow in on eth0 from 10.0.0.0/8 to any port 22 proto tcp comment 'ssh from lan'"
        );
        assert!(
            cmd.script().ends_with(" 'ssh from lan'"),
            "{}",
            cmd.script()
        );
    }

    #[test]
    fn status_lines_decide_state_logging_and_defaults() {
        assert!(!state_changes("enabled", ACTIVE));
        assert!(state_changes("disabled", ACTIVE));
        assert!(state_changes("enabled", "Status: inactive\n"));
        assert!(state_changes("reloaded", ACTIVE));
        assert!(!logging_changes("on", ACTIVE));
        assert!(!logging_changes("low", ACTIVE));
        assert!(logging_changes("high", ACTIVE));
        assert!(logging_changes("off", ACTIVE));
        assert!(!default_changes("deny", None, ACTIVE));
        assert!(default_changes("deny", Some("outgoing"), ACTIVE));
        assert!(!default_changes("allow", Some("routed"), ACTIVE));
        assert!(default_changes("deny", None, "Status: inactive\n"));
    }

    #[test]
    fn dry_runs_compare_with_the_saved_tuples() {
        let saved = "### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n";
        let spec = RuleSpec {
            from_ip: "any".into(),
            to_ip: "any".into(),
            ..RuleSpec::default()
        };
        let same = "*filter\n### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input -p tcp --dport 22 -j ACCEPT\n";
        assert!(!dry_run_changes(&spec, saved, same));
        let more = format!("{same}### tuple ### allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in\n");
        assert!(dry_run_changes(&spec, saved, &more));
        assert!(!dry_run_changes(
            &spec,
            saved,
            "Skipping adding existing rule\nSkipping adding existing rule (v6)\n"
        ));
    }

    #[test]
    fn inserts_resolve_against_numbered_rules() {
        let numbered = "Status: active\n\n     To                         Action      From\n[ 1] 22/tcp                     ALLOW IN    Anywhere\n[ 2] 80/tcp                     ALLOW IN    Anywhere\n[ 3] 22/tcp (v6)                ALLOW IN    Anywhere (v6)\n";
        assert_eq!(insert_position(2, "zero", ""), Some(2));
        assert_eq!(insert_position(0, "first-ipv6", numbered), Some(3));
        assert_eq!(insert_position(-1, "last-ipv4", numbered), Some(1));
        assert_eq!(insert_position(1, "last-ipv6", numbered), None);
    }
}
