//! File and account modules run as root on a host where an unprivileged user has a shell: a
//! link that user plants must not lead a write, an owner or a mode to a root-only file, and
//! no secret may appear in an argv (`ps` shows every process's to every user).

mod support;

use support::{converge, play, run_play, Target};

/// A file's owner, group, mode and sha1 on the target.
fn identity(t: &Target, path: &str) -> String {
    t.root(&format!("stat -c '%F %U %G %a' {path} && sha1sum < {path}"))
}

#[test]
fn links_a_user_planted_are_replaced_never_written_through() {
    let t = Target::start("t");
    t.root(
        "useradd -m -s /bin/sh bob && printf 'root only\\n' > /root/secret && chmod 600 /root/secret \
         && su -s /bin/sh bob -c 'cd /home/bob && ln -s /root/secret app.conf && ln -s /root/secret explicit.conf \
            && ln -s /root/secret tmpl.conf && mkdir -m 700 .ssh && ln -s /etc/shadow .ssh/authorized_keys' \
         && mkdir -p /etc/app && printf 'real\\n' > /etc/app/real.conf && ln -s real.conf /etc/app/current.conf \
         && mkdir /etc/app/d && ln -s d /etc/app/dirlink",
    );
    let secret = identity(&t, "/root/secret");
    let shadow = identity(&t, "/etc/shadow");
    let key = std::fs::read_to_string(support::client_key().with_extension("pub")).unwrap();
    let tasks = format!(
        r#"
    - copy: content="kiln\n" dest=/home/bob/app.conf owner=bob mode=0644
    - copy: content="kiln\n" dest=/home/bob/explicit.conf owner=bob follow=no
    - template: src=t.j2 dest=/home/bob/tmpl.conf owner=bob
    - authorized_key:
        user: bob
        key: "{key}"
    - copy: content="followed\n" dest=/etc/app/current.conf follow=yes
    - copy: src=banner.txt dest=/etc/app/dirlink
"#,
        key = key.trim()
    );
    converge(
        &t,
        &[
            ("site.yml", &play(&tasks)),
            ("templates/t.j2", "t\n"),
            ("files/banner.txt", "hi\n"),
        ],
        "/root /etc/shadow /home/bob /etc/app",
        true,
    );
    assert_eq!(
        identity(&t, "/root/secret"),
        secret,
        "the root-only file changed"
    );
    assert_eq!(identity(&t, "/etc/shadow"), shadow, "/etc/shadow changed");
    assert_eq!(
        t.root("cd /home/bob && stat -c '%n %F %U %a' app.conf explicit.conf tmpl.conf .ssh/authorized_keys"),
        "app.conf regular file bob 644\nexplicit.conf regular file bob 644\n\
         tmpl.conf regular file bob 644\n.ssh/authorized_keys regular file bob 600\n"
    );
    assert_eq!(
        t.root("cat /home/bob/app.conf /home/bob/tmpl.conf /home/bob/.ssh/authorized_keys"),
        format!("kiln\nt\n{}\n", key.trim()),
        "nothing of the link's target was carried over"
    );
    assert_eq!(
        t.root("readlink /etc/app/current.conf; cat /etc/app/real.conf"),
        "real.conf\nfollowed\n",
        "follow: yes writes the file the link names and keeps the link"
    );
    assert_eq!(
        t.root("readlink /etc/app/dirlink; cat /etc/app/d/banner.txt"),
        "d\nhi\n",
        "a link to a directory receives the file, as a directory does"
    );
}

#[test]
fn a_linked_key_directory_is_refused_by_authorized_key_and_user() {
    let t = Target::start("t");
    t.root("useradd -m -s /bin/sh carol && su -s /bin/sh carol -c 'ln -s /etc /home/carol/.ssh'");
    let etc = t.root("stat -c '%U %G %a' /etc");
    let run = run_play(
        &t,
        &play("    - authorized_key: user=carol key='ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKiln carol'\n"),
    );
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.stdout.contains("is a symbolic link"), "{}", run.stdout);
    let run = run_play(
        &t,
        &play("    - user: name=carol generate_ssh_key=yes ssh_key_type=ed25519\n"),
    );
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.stdout.contains("symbolic link"), "{}", run.stdout);
    assert_eq!(t.root("stat -c '%U %G %a' /etc"), etc);
    assert!(!t.check("test -e /etc/authorized_keys || test -e /etc/id_ed25519"));
}

#[test]
fn secrets_never_reach_an_argv() {
    let t = Target::start("t");
    // Every program that could be handed a secret logs its arguments first.
    t.root(
        "for p in /usr/bin/ssh-keygen /usr/sbin/useradd /usr/sbin/usermod /usr/sbin/chpasswd; do \
           { echo '#!/bin/sh'; echo 'printf \"%s\\n\" \"$0 $*\" >> /root/argv.log'; echo \"exec $p \\\"\\$@\\\"\"; } \
             > /usr/local/bin/${p##*/} && chmod 755 /usr/local/bin/${p##*/}; done \
         && useradd -m -s /bin/sh erin && ls -a /tmp > /root/tmp.before",
    );
    let hash = "$6$kilnsalt$Zm9yIGEgdGVzdCBvbmx5IG5vdCBhIHJlYWwgaGFzaA";
    let tasks = format!(
        r#"
    - user:
        name: dave
        password: '{hash}'
        expires: 1900000000
        generate_ssh_key: yes
        ssh_key_type: ed25519
        ssh_key_passphrase: s3cret-phrase
    - user: name=erin password='{hash}' expires=1900000000
"#
    );
    converge(
        &t,
        &[("site.yml", &play(&tasks))],
        "/etc/passwd /etc/shadow /home",
        true,
    );
    let log = t.root("cat /root/argv.log");
    for program in ["ssh-keygen -q -t ed25519", "useradd", "chpasswd"] {
        assert!(log.contains(program), "{program} was not run:\n{log}");
    }
    assert!(
        !log.contains("s3cret"),
        "the passphrase was in an argv:\n{log}"
    );
    assert!(!log.contains("kilnsalt"), "the hash was in an argv:\n{log}");
    assert!(
        t.check("ssh-keygen -y -P s3cret-phrase -f /home/dave/.ssh/id_ed25519 >/dev/null"),
        "the key is not encrypted with the passphrase"
    );
    assert!(!t.check("ssh-keygen -y -P '' -f /home/dave/.ssh/id_ed25519 >/dev/null 2>&1"));
    assert_eq!(
        t.root("getent shadow dave erin | cut -d: -f1,2,8"),
        format!("dave:{hash}:21990\nerin:{hash}:21990\n")
    );
    assert_eq!(
        t.root("ls -a /tmp"),
        t.root("cat /root/tmp.before"),
        "files were left in /tmp"
    );
}

#[test]
fn unarchive_modes_never_follow_a_member_link() {
    let t = Target::start("t");
    t.root(
        "printf 'root only\\n' > /root/secret && chmod 600 /root/secret && mkdir -p /srv/src /srv/out \
         && cd /srv/src && printf 'x\\n' > f && ln -s /root/secret link && tar -cf /srv/a.tar f link",
    );
    let secret = identity(&t, "/root/secret");
    let tasks = "    - unarchive: src=/srv/a.tar dest=/srv/out remote_src=yes mode=0644\n";
    converge(&t, &[("site.yml", &play(tasks))], "/root /srv/out", true);
    assert_eq!(
        identity(&t, "/root/secret"),
        secret,
        "chmod followed the link"
    );
    assert_eq!(
        t.root("stat -c '%n %F %a' /srv/out/f; readlink /srv/out/link"),
        "/srv/out/f regular file 644\n/root/secret\n"
    );
}

#[test]
fn touch_never_creates_what_a_dangling_link_names() {
    let t = Target::start("t");
    t.root(
        "useradd -m -s /bin/sh bob && su -s /bin/sh bob -c 'ln -s /etc/nologin /home/bob/stamp'",
    );
    support::run_play(&t, &play("    - file: path=/home/bob/stamp state=touch\n")).assert_ok();
    assert!(
        !t.check("test -e /etc/nologin"),
        "touch created the link's target"
    );
    assert_eq!(t.root("readlink /home/bob/stamp"), "/etc/nologin\n");
}
