//! Hosts reached as `ssh` reaches them: through jump hosts (ProxyJump, two hops), a
//! ProxyCommand, and with only ssh_config naming the address, user, port and key. The hosts
//! behind a jump live in network namespaces only the previous hop is routed to, so the
//! controller cannot reach them without it.

mod support;

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};

use support::{client_key, playbook, project, Netns, Target};

/// A chain: `hosts[0]` reachable from the test, each next one only from the one before.
struct Chain {
    hosts: Vec<Target>,
    /// Kept until the targets are gone (fields drop in order).
    namespaces: Vec<Netns>,
}

impl Chain {
    fn new(length: usize) -> Chain {
        static NEXT: AtomicU8 = AtomicU8::new(0);
        let a = 200 + (std::process::id() % 50) as u8;
        let b = NEXT.fetch_add(1, Ordering::SeqCst);
        let namespaces: Vec<Netns> = (0..length).map(|_| Netns::new()).collect();
        let address = |link: usize, end: u8| Ipv4Addr::new(10, a, b, (link * 4) as u8 + end);
        let mut hosts = Vec::new();
        for (i, netns) in namespaces.iter().enumerate() {
            let previous = i.checked_sub(1).map(|p| &namespaces[p]);
            netns.link(address(i, 2), previous, address(i, 1));
            hosts.push(Target::start_in_netns(
                &format!("h{i}"),
                netns,
                address(i, 2),
            ));
        }
        Chain { hosts, namespaces }
    }

    /// Runs `command` on the last host with the OpenSSH client, from the namespace before it.
    fn on_last(&self, command: &str) -> String {
        let last = self.hosts.last().expect("hosts");
        let from = &self.namespaces[self.namespaces.len() - 2].name;
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                from,
                "ssh",
                "-o",
                "StrictHostKeyChecking=no",
            ])
            .args([
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "BatchMode=yes",
                "-i",
            ])
            .arg(client_key())
            .arg(format!("kiln@{}", last.address))
            .arg(command)
            .output()
            .expect("ssh");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

const SITE: &str = "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: id -un\n      register: who\n    - copy: content={{ who.stdout }} dest=/tmp/reached\n";

fn host_block(alias: &str, t: &Target, extra: &str) -> String {
    format!(
        "Host {alias}\n  HostName {}\n  User kiln\n  IdentityFile {}\n{extra}",
        t.address,
        client_key().display()
    )
}

#[test]
fn proxy_jump_through_two_hops_from_an_ssh_config_file() {
    let chain = Chain::new(3);
    let [j1, j2, t] = &chain.hosts[..] else {
        unreachable!()
    };
    let config = [
        host_block("j1", j1, ""),
        host_block("j2", j2, "  Port 22\n"),
        host_block("behind", t, "  ProxyJump j1,j2\n"),
    ]
    .concat();
    let dir = project(&[("site.yml", SITE), ("cfg", &config)]);
    let d = dir.path();
    let hosts = |line: &str| std::fs::write(d.join("hosts"), format!("[all]\n{line}\n")).unwrap();

    hosts(&format!("behind ansible_host={}", t.address));
    let direct = playbook(d, &["-i", "hosts", "site.yml"]);
    assert_eq!(
        direct.recap("behind", "unreachable"),
        1,
        "{}",
        direct.stdout
    );

    hosts("behind ansible_ssh_common_args='-F cfg'");
    let run = playbook(d, &["-i", "hosts", "-vvv", "site.yml"]);
    run.assert_ok();
    let hops = format!(
        "through jump hosts kiln@{}:22, kiln@{}:22",
        j1.address, j2.address
    );
    assert!(run.stdout.contains(&hops), "{}", run.stdout);
    assert_eq!(chain.on_last("cat /tmp/reached"), "kiln");

    // The second hop's port is wrong: the error names the hop that could not go on.
    std::fs::write(d.join("cfg"), config.replace("  Port 22\n", "  Port 2\n")).unwrap();
    let broken = playbook(d, &["-i", "hosts", "site.yml"]);
    let hop = format!(
        "jump host kiln@{}:22 could not connect to {} port 2",
        j1.address, j2.address
    );
    assert!(broken.stdout.contains(&hop), "{}", broken.stdout);
    // The second hop refuses the login: its own authentication fails and names it.
    let key = format!("IdentityFile {}\n  Port 22", client_key().display());
    let no_key = config.replace(&key, "IdentityFile /nonexistent\n  Port 22");
    assert_ne!(no_key, config);
    std::fs::write(d.join("cfg"), no_key).unwrap();
    let refused = playbook(d, &["-i", "hosts", "site.yml"]);
    assert_eq!(
        refused.recap("behind", "unreachable"),
        1,
        "{}",
        refused.stdout
    );
    let hop = format!("jump host kiln@{}:22: ", j2.address);
    assert!(refused.stdout.contains(&hop), "{}", refused.stdout);
}

#[test]
fn proxy_command_from_ssh_common_args() {
    let chain = Chain::new(2);
    let [jump, t] = &chain.hosts[..] else {
        unreachable!()
    };
    let proxy = format!(
        "ssh -i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -W %h:%p kiln@{}",
        client_key().display(),
        jump.address
    );
    let line = format!(
        "behind ansible_host={} ansible_user=kiln ansible_ssh_private_key_file={} ansible_ssh_common_args='-o ProxyCommand=\"{proxy}\"'",
        t.address,
        client_key().display()
    );
    let dir = project(&[("site.yml", SITE), ("hosts", &format!("[all]\n{line}\n"))]);
    playbook(dir.path(), &["-i", "hosts", "site.yml"]).assert_ok();
    assert_eq!(chain.on_last("cat /tmp/reached"), "kiln");
}

#[test]
fn ssh_config_alone_names_address_user_port_and_key_and_inventory_wins() {
    let t = Target::start("t");
    // ~/.ssh/config (HOME is the project) includes the host's block from conf.d.
    let block = host_block("web", &t, "  Port 2\n");
    let dir = project(&[
        ("site.yml", SITE),
        (".ssh/config", "Include conf.d/*.conf\n"),
        (".ssh/conf.d/web.conf", &block),
        ("hosts", "[all]\nweb\n"),
    ]);
    let d = dir.path();
    let wrong_port = playbook(d, &["-i", "hosts", "site.yml"]);
    assert_eq!(
        wrong_port.recap("web", "unreachable"),
        1,
        "{}",
        wrong_port.stdout
    );
    assert!(
        wrong_port
            .stdout
            .contains(&format!("connect to host {} port 2", t.address)),
        "HostName and Port come from ssh_config: {}",
        wrong_port.stdout
    );
    std::fs::write(d.join("hosts"), "[all]\nweb ansible_port=22\n").unwrap();
    playbook(d, &["-i", "hosts", "site.yml"]).assert_ok();
    assert_eq!(
        t.root("cat /tmp/reached"),
        "kiln",
        "User comes from ssh_config"
    );
}
