//! `iptables` (ansible.builtin): one rule, a chain's policy, a flush or a chain, through the
//! target's `iptables`/`ip6tables`. The rule is built word for word as ansible-core's module
//! builds it, and its presence is asked of `iptables -C` (so idempotence is iptables' own
//! notion of an equal rule). One command reads the state, a second applies a change.

use async_trait::async_trait;
use minijinja::value::ValueKind;

use crate::connection::quote;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Iptables;

/// `tcp_flags`: (`flags`, `flags_set`).
pub type TcpFlags = (Vec<String>, Vec<String>);

/// The rule options (their ansible names), as strings or lists of strings.
#[derive(Debug, Default, Clone)]
pub struct RuleArgs {
    pub protocol: Option<String>,
    pub source: Option<String>,
    pub destination: Option<String>,
    pub matches: Vec<String>,
    pub tcp_flags: Option<TcpFlags>,
    pub jump: Option<String>,
    pub gateway: Option<String>,
    pub log_prefix: Option<String>,
    pub log_level: Option<String>,
    pub to_destination: Option<String>,
    pub destination_ports: Vec<String>,
    pub to_source: Option<String>,
    pub goto: Option<String>,
    pub in_interface: Option<String>,
    pub out_interface: Option<String>,
    pub fragment: Option<String>,
    pub set_counters: Option<String>,
    pub source_port: Option<String>,
    pub destination_port: Option<String>,
    pub to_ports: Option<String>,
    pub set_dscp_mark: Option<String>,
    pub set_dscp_mark_class: Option<String>,
    /// `ignore`, `match` or `negate`.
    pub syn: String,
    pub ctstate: Vec<String>,
    pub src_range: Option<String>,
    pub dst_range: Option<String>,
    pub match_set: Option<String>,
    pub match_set_flags: Option<String>,
    pub limit: Option<String>,
    pub limit_burst: Option<String>,
    pub uid_owner: Option<String>,
    pub gid_owner: Option<String>,
    pub reject_with: Option<String>,
    pub icmp_type: Option<String>,
    pub comment: Option<String>,
    pub ip_version: String,
}

/// `flag value`, or `! flag value` for a value written `!value`.
fn param(rule: &mut Vec<String>, value: &Option<String>, flag: &str) {
    if let Some(v) = value {
        match v.strip_prefix('!') {
            Some(rest) => rule.extend(["!".into(), flag.into(), rest.into()]),
            None => rule.extend([flag.into(), v.clone()]),
        }
    }
}

fn csv(rule: &mut Vec<String>, values: &[String], flag: &str) {
    if !values.is_empty() {
        rule.extend([flag.into(), values.join(",")]);
    }
}

fn matcher(rule: &mut Vec<String>, when: bool, name: &str) {
    if when {
        rule.extend(["-m".into(), name.into()]);
    }
}

fn is_jump(jump: &Option<String>, name: &str) -> bool {
    jump.as_deref()
        .is_some_and(|j| j.eq_ignore_ascii_case(name))
}

/// The rule's words in ansible-core's order (`construct_rule`).
pub fn construct_rule(a: &RuleArgs) -> Vec<String> {
    let mut r = Vec::new();
    param(&mut r, &a.protocol, "-p");
    param(&mut r, &a.source, "-s");
    param(&mut r, &a.destination, "-d");
    for m in &a.matches {
        param(&mut r, &Some(m.clone()), "-m");
    }
    if let Some((flags, set)) = &a.tcp_flags {
        r.extend(["--tcp-flags".into(), flags.join(","), set.join(",")]);
    }
    param(&mut r, &a.jump, "-j");
    if is_jump(&a.jump, "tee") {
        param(&mut r, &a.gateway, "--gateway");
    }
    param(&mut r, &a.log_prefix, "--log-prefix");
    param(&mut r, &a.log_level, "--log-level");
    param(&mut r, &a.to_destination, "--to-destination");
    matcher(&mut r, !a.destination_ports.is_empty(), "multiport");
    csv(&mut r, &a.destination_ports, "--dports");
    param(&mut r, &a.to_source, "--to-source");
    param(&mut r, &a.goto, "-g");
    param(&mut r, &a.in_interface, "-i");
    param(&mut r, &a.out_interface, "-o");
    param(&mut r, &a.fragment, "-f");
    param(&mut r, &a.set_counters, "-c");
    param(&mut r, &a.source_port, "--source-port");
    param(&mut r, &a.destination_port, "--destination-port");
    param(&mut r, &a.to_ports, "--to-ports");
    param(&mut r, &a.set_dscp_mark, "--set-dscp");
    let not_dscp = !is_jump(&a.jump, "dscp");
    if a.set_dscp_mark.is_some() && not_dscp {
        r.extend(["-j".into(), "DSCP".into()]);
    }
    param(&mut r, &a.set_dscp_mark_class, "--set-dscp-class");
    if a.set_dscp_mark_class.is_some() && not_dscp {
        r.extend(["-j".into(), "DSCP".into()]);
    }
    match a.syn.as_str() {
        "match" => r.push("--syn".into()),
        "negate" => r.extend(["!".into(), "--syn".into()]),
        _ => {}
    }
    let has = |m: &str| a.matches.iter().any(|x| x == m);
    if has("conntrack") {
        csv(&mut r, &a.ctstate, "--ctstate");
    } else if has("state") {
        csv(&mut r, &a.ctstate, "--state");
    } else if !a.ctstate.is_empty() {
        matcher(&mut r, true, "conntrack");
        csv(&mut r, &a.ctstate, "--ctstate");
    }
    let ranges = a.src_range.is_some() || a.dst_range.is_some();
    matcher(&mut r, !has("iprange") && ranges, "iprange");
    param(&mut r, &a.src_range, "--src-range");
    param(&mut r, &a.dst_range, "--dst-range");
    matcher(&mut r, !has("set") && a.match_set.is_some(), "set");
    param(&mut r, &a.match_set, "--match-set");
    if has("set") || a.match_set.is_some() {
        if let Some(flags) = &a.match_set_flags {
            r.push(flags.clone());
        }
    }
    matcher(
        &mut r,
        a.limit.is_some() || a.limit_burst.is_some(),
        "limit",
    );
    param(&mut r, &a.limit, "--limit");
    param(&mut r, &a.limit_burst, "--limit-burst");
    matcher(&mut r, a.uid_owner.is_some(), "owner");
    param(&mut r, &a.uid_owner, "--uid-owner");
    matcher(&mut r, a.gid_owner.is_some(), "owner");
    param(&mut r, &a.gid_owner, "--gid-owner");
    if a.jump.is_none() {
        if a.reject_with.is_some() {
            r.extend(["-j".into(), "REJECT".into()]);
        }
        if a.set_dscp_mark_class.is_some() || a.set_dscp_mark.is_some() {
            r.extend(["-j".into(), "DSCP".into()]);
        }
    }
    param(&mut r, &a.reject_with, "--reject-with");
    let icmp_flag = match a.ip_version.as_str() {
        "ipv6" => "--icmpv6-type",
        "both" => "--icmp-type --icmpv6-type",
        _ => "--icmp-type",
    };
    param(&mut r, &a.icmp_type, icmp_flag);
    matcher(&mut r, a.comment.is_some(), "comment");
    param(&mut r, &a.comment, "--comment");
    r
}

/// What the task asks for, in the order ansible-core decides it.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    Flush,
    Policy(String),
    /// A chain without rule options: present (created with `chain_management`) or absent.
    Chain {
        present: bool,
        manage: bool,
    },
    Rule {
        present: bool,
        insert: bool,
    },
}

/// The table, chain, wait and operation shared by every command of one task.
#[derive(Debug, Clone)]
pub struct Request {
    pub table: String,
    pub chain: Option<String>,
    pub wait: Option<String>,
    pub rule_num: Option<String>,
    pub rule: Vec<String>,
    pub operation: Operation,
}

impl Request {
    /// `BIN -t TABLE ACTION CHAIN [rule_num] [-w wait]` and the rule when `with_rule`.
    fn command(&self, bin: &str, action: &str, with_rule: bool) -> String {
        let mut words = vec![
            bin.to_string(),
            "-t".into(),
            quote(&self.table),
            action.into(),
        ];
        if let Some(chain) = &self.chain {
            words.push(quote(chain));
        }
        if action == "-I" {
            if let Some(n) = &self.rule_num {
                words.push(quote(n));
            }
        }
        if let Some(w) = &self.wait {
            words.extend(["-w".into(), quote(w)]);
        }
        if with_rule {
            words.extend(self.rule.iter().map(|w| quote(w)));
        }
        words.join(" ")
    }

    /// The command reading what the operation depends on (None: nothing to read). Its
    /// output is `rc:N`, with the chain listing's first line for a policy.
    pub fn probe(&self, bin: &str) -> Option<String> {
        let check = match &self.operation {
            Operation::Flush => return None,
            Operation::Policy(_) => {
                return Some(format!("{} | head -n 1", self.command(bin, "-L", false)))
            }
            Operation::Chain { .. } => self.command(bin, "-L", false),
            Operation::Rule { .. } => self.command(bin, "-C", true),
        };
        Some(format!("{check} >/dev/null 2>&1; echo rc:$?"))
    }

    /// Whether the operation changes something, from the probe's output (pure), and the
    /// command that applies it (None: the change is only reported, as ansible-core does for
    /// a chain without `chain_management`).
    pub fn decide(&self, bin: &str, probe: &str) -> Result<(bool, Option<String>), String> {
        let found = probe.lines().any(|l| l.trim() == "rc:0");
        Ok(match &self.operation {
            Operation::Flush => (true, Some(self.command(bin, "-F", false))),
            Operation::Policy(wanted) => {
                let current = probe
                    .lines()
                    .next()
                    .and_then(|l| l.split_once("(policy "))
                    .and_then(|(_, rest)| rest.split([')', ' ']).next())
                    .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_uppercase()))
                    .ok_or("Can't detect current policy")?;
                let change = current != wanted;
                let command = format!("{} {}", self.command(bin, "-P", false), quote(wanted));
                (change, change.then_some(command))
            }
            Operation::Chain { present, manage } => {
                let change = found != *present;
                let action = if *present { "-N" } else { "-X" };
                let command = (change && *manage).then(|| self.command(bin, action, false));
                (change, command)
            }
            Operation::Rule { present, insert } => {
                let change = found != *present;
                let action = match (present, insert) {
                    (false, _) => "-D",
                    (true, true) => "-I",
                    (true, false) => "-A",
                };
                (change, change.then(|| self.command(bin, action, true)))
            }
        })
    }
}

fn tcp_flags(args: &mut Args) -> Result<Option<TcpFlags>, ModuleError> {
    let Some(value) = args.raw("tcp_flags") else {
        return Ok(None);
    };
    if value.kind() != ValueKind::Map {
        return Err(ModuleError::Args(
            "iptables: option 'tcp_flags' must be a dictionary".into(),
        ));
    }
    let list = |key: &str| -> Vec<String> {
        match value.get_attr(key) {
            Ok(v) if v.kind() == ValueKind::Seq => v
                .try_iter()
                .into_iter()
                .flatten()
                .map(|i| i.to_string())
                .collect(),
            Ok(v) if !v.is_undefined() && !v.is_none() => {
                v.to_string().split(',').map(str::to_string).collect()
            }
            _ => Vec::new(),
        }
    };
    let (flags, set) = (list("flags"), list("flags_set"));
    Ok((!flags.is_empty() && !set.is_empty()).then_some((flags, set)))
}

fn rule_args(args: &mut Args, ip_version: &str) -> Result<RuleArgs, ModuleError> {
    let mut s = |key: &str| args.str(&[key]);
    let mut r = RuleArgs {
        protocol: s("protocol")?,
        source: s("source")?,
        destination: s("destination")?,
        jump: s("jump")?,
        gateway: s("gateway")?,
        log_prefix: s("log_prefix")?,
        to_destination: s("to_destination")?,
        to_source: s("to_source")?,
        goto: s("goto")?,
        in_interface: s("in_interface")?,
        out_interface: s("out_interface")?,
        fragment: s("fragment")?,
        set_counters: s("set_counters")?,
        source_port: s("source_port")?,
        destination_port: s("destination_port")?,
        to_ports: s("to_ports")?,
        set_dscp_mark: s("set_dscp_mark")?,
        set_dscp_mark_class: s("set_dscp_mark_class")?,
        src_range: s("src_range")?,
        dst_range: s("dst_range")?,
        match_set: s("match_set")?,
        limit: s("limit")?,
        limit_burst: s("limit_burst")?,
        uid_owner: s("uid_owner")?,
        gid_owner: s("gid_owner")?,
        reject_with: s("reject_with")?,
        icmp_type: s("icmp_type")?,
        comment: s("comment")?,
        ip_version: ip_version.to_string(),
        ..RuleArgs::default()
    };
    r.matches = args.list(&["match"])?;
    r.destination_ports = args.list(&["destination_ports"])?;
    r.ctstate = args.list(&["ctstate"])?;
    r.tcp_flags = tcp_flags(args)?;
    r.syn = args.choice("syn", &["ignore", "match", "negate"], "ignore")?;
    if args.str(&["match_set_flags"])?.is_some() {
        r.match_set_flags = Some(args.choice(
            "match_set_flags",
            &["src", "dst", "src,dst", "dst,src", "src,src", "dst,dst"],
            "src",
        )?);
    }
    if args.str(&["log_level"])?.is_some() {
        let levels = [
            "0", "1", "2", "3", "4", "5", "6", "7", "emerg", "alert", "crit", "error", "warning",
            "notice", "info", "debug",
        ];
        r.log_level = Some(args.choice("log_level", &levels, "0")?);
    }
    if r.set_dscp_mark.is_some() && r.set_dscp_mark_class.is_some() {
        return Err(ModuleError::Args(
            "iptables: parameters are mutually exclusive: set_dscp_mark|set_dscp_mark_class".into(),
        ));
    }
    if (r.set_dscp_mark.is_some() || r.set_dscp_mark_class.is_some()) && r.jump.is_none() {
        return Err(ModuleError::Args(
            "iptables: missing parameter(s) required by 'set_dscp_mark': jump".into(),
        ));
    }
    if is_jump(&r.jump, "tee") && r.gateway.is_none() {
        return Err(ModuleError::Args(
            "iptables: jump is TEE but all of the following are missing: gateway".into(),
        ));
    }
    Ok(r)
}

#[async_trait]
impl Module for Iptables {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let table = args.choice(
            "table",
            &["filter", "nat", "mangle", "raw", "security"],
            "filter",
        )?;
        let present = args.choice("state", &["absent", "present"], "present")? == "present";
        let insert = args.choice("action", &["append", "insert"], "append")? == "insert";
        let ip_version = args.choice("ip_version", &["ipv4", "ipv6", "both"], "ipv4")?;
        let chain = args.str(&["chain"])?;
        let rule_num = args.str(&["rule_num"])?;
        let wait = args.str(&["wait"])?;
        let flush = args.bool("flush", false)?;
        let policy = match args.str(&["policy"])? {
            Some(_) => Some(args.choice("policy", &["ACCEPT", "DROP", "QUEUE", "RETURN"], "")?),
            None => None,
        };
        let chain_management = args.bool("chain_management", false)?;
        args.ignore(&["numeric"]);
        let mut rule_args = rule_args(&mut args, &ip_version)?;
        args.finish()?;
        if flush && policy.is_some() {
            return Err(ModuleError::Args(
                "iptables: parameters are mutually exclusive: flush|policy".into(),
            ));
        }
        if !flush && chain.is_none() {
            return Err(ModuleError::Args(
                "iptables: flush is False but all of the following are missing: chain".into(),
            ));
        }
        let shown_rule = construct_rule(&rule_args).join(" ");
        if rule_args.log_prefix.is_some() || rule_args.log_level.is_some() {
            match rule_args.jump.as_deref() {
                None => rule_args.jump = Some("LOG".into()),
                Some("LOG") => {}
                Some(_) => {
                    return Err(ModuleError::Failed(
                        "Logging options can only be used with the LOG jump target.".into(),
                    ))
                }
            }
        }
        let operation = if flush {
            Operation::Flush
        } else if let Some(p) = policy {
            Operation::Policy(p)
        } else if shown_rule.is_empty() {
            Operation::Chain {
                present,
                manage: chain_management,
            }
        } else {
            Operation::Rule { present, insert }
        };
        let request = Request {
            table: table.clone(),
            chain: chain.clone(),
            wait: wait.clone(),
            rule_num,
            rule: construct_rule(&rule_args),
            operation,
        };
        let bins: &[&str] = match ip_version.as_str() {
            "ipv6" => &["ip6tables"],
            "both" => &["iptables", "ip6tables"],
            _ => &["iptables"],
        };
        let mut changed = false;
        for bin in bins {
            let found = ctx.run(&format!("command -v {bin}"), None).await?;
            if found.rc != 0 {
                return Err(ModuleError::Failed(format!(
                    "Failed to find required executable \"{bin}\" in paths: /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                )));
            }
            let probe = match request.probe(bin) {
                Some(command) => ctx.run(&command, None).await?.stdout_text(),
                None => String::new(),
            };
            let (change, apply) = request.decide(bin, &probe).map_err(ModuleError::Failed)?;
            changed |= change;
            if let (Some(command), false) = (apply, ctx.check_mode) {
                ctx.run_ok(&command, None, bin).await?;
            }
        }
        Ok(ModuleResult::changed(changed)
            .with("ip_version", ip_version)
            .with("table", table)
            .with("chain", chain)
            .with("flush", flush)
            .with("rule", shown_rule)
            .with("state", if present { "present" } else { "absent" })
            .with("chain_management", chain_management)
            .with("wait", wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssh_rule() -> RuleArgs {
        RuleArgs {
            protocol: Some("tcp".into()),
            source: Some("!10.0.0.0/8".into()),
            destination_port: Some("22".into()),
            ctstate: vec!["NEW".into(), "ESTABLISHED".into()],
            jump: Some("ACCEPT".into()),
            comment: Some("ssh in".into()),
            syn: "ignore".into(),
            ip_version: "ipv4".into(),
            ..RuleArgs::default()
        }
    }

    #[test]
    fn rules_read_as_ansible_builds_them() {
        assert_eq!(
            construct_rule(&ssh_rule()).join(" "),
            "-p tcp ! -s 10.0.0.0/8 -j ACCEPT --destination-port 22 -m conntrack --ctstate NEW,ESTABLISHED -m comment --comment ssh in"
        );
        let web = RuleArgs {
            protocol: Some("tcp".into()),
            matches: vec!["state".into()],
            ctstate: vec!["NEW".into()],
            destination_ports: vec!["80".into(), "443:444".into()],
            reject_with: Some("tcp-reset".into()),
            syn: "negate".into(),
            ip_version: "ipv6".into(),
            icmp_type: Some("1".into()),
            ..RuleArgs::default()
        };
        assert_eq!(
            construct_rule(&web).join(" "),
            "-p tcp -m state -m multiport --dports 80,443:444 ! --syn --state NEW -j REJECT --reject-with tcp-reset --icmpv6-type 1"
        );
    }

    fn request(operation: Operation) -> Request {
        Request {
            table: "filter".into(),
            chain: Some("INPUT".into()),
            wait: Some("5".into()),
            rule_num: Some("1".into()),
            rule: vec!["-p".into(), "tcp".into(), "-j".into(), "ACCEPT".into()],
            operation,
        }
    }

    #[test]
    fn a_rule_is_applied_only_when_check_disagrees() {
        let append = request(Operation::Rule {
            present: true,
            insert: false,
        });
        assert_eq!(
            append.probe("iptables").unwrap(),
            "iptables -t filter -C INPUT -w 5 -p tcp -j ACCEPT >/dev/null 2>&1; echo rc:$?"
        );
        assert_eq!(append.decide("iptables", "rc:0\n"), Ok((false, None)));
        assert_eq!(
            append.decide("iptables", "rc:1\n"),
            Ok((
                true,
                Some("iptables -t filter -A INPUT -w 5 -p tcp -j ACCEPT".into())
            ))
        );
        let insert = request(Operation::Rule {
            present: true,
            insert: true,
        });
        assert_eq!(
            insert.decide("ip6tables", "rc:1\n").unwrap().1.as_deref(),
            Some("ip6tables -t filter -I INPUT 1 -w 5 -p tcp -j ACCEPT")
        );
        let delete = request(Operation::Rule {
            present: false,
            insert: false,
        });
        assert_eq!(delete.decide("iptables", "rc:1\n"), Ok((false, None)));
        assert!(delete.decide("iptables", "rc:0\n").unwrap().0);
    }

    #[test]
    fn policies_and_chains() {
        let policy = request(Operation::Policy("DROP".into()));
        assert_eq!(
            policy.decide("iptables", "Chain INPUT (policy ACCEPT)\n"),
            Ok((true, Some("iptables -t filter -P INPUT -w 5 DROP".into())))
        );
        assert_eq!(
            policy.decide("iptables", "Chain INPUT (policy DROP 0 packets)\n"),
            Ok((false, None))
        );
        assert!(policy
            .decide("iptables", "Chain KILN (1 references)\n")
            .is_err());
        let unmanaged = request(Operation::Chain {
            present: true,
            manage: false,
        });
        assert_eq!(unmanaged.decide("iptables", "rc:1\n"), Ok((true, None)));
        let managed = request(Operation::Chain {
            present: false,
            manage: true,
        });
        assert_eq!(
            managed.decide("iptables", "rc:0\n"),
            Ok((true, Some("iptables -t filter -X INPUT -w 5".into())))
        );
        assert_eq!(
            request(Operation::Flush).decide("iptables", ""),
            Ok((true, Some("iptables -t filter -F INPUT -w 5".into())))
        );
    }
}
