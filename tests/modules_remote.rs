//! Modules that drive the target's own tools or reach other machines from it, natively
//! (no Python module shipped): git, uri, pip, known_hosts. Each runs against a real target
//! with the module protocol (check mode changes nothing, a real run changes, a second run
//! reports `changed=0`).

mod support;

use support::{converge, play, run_play, Target};

/// A bare repository at /srv/repo.git: `main` (two commits, the remote's HEAD), `dev`, and
/// an annotated tag `v1` on the first commit.
fn seed_repository(t: &Target) {
    t.root(
        "set -e; export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@e GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@e; \
         git init -q --bare -b main /srv/repo.git; git init -q -b main /root/w; cd /root/w; \
         echo one > f; git add f; git commit -qm one; git tag -a v1 -m v1; \
         echo two > f; git commit -qam two; git checkout -qb dev; echo dev > f; git commit -qam dev; \
         git push -q /srv/repo.git main dev v1",
    );
}

fn rev(t: &Target, dir: &str, what: &str) -> String {
    t.root(&format!("git -C {dir} rev-parse {what}"))
        .trim()
        .to_string()
}

#[test]
fn git_clones_branches_tags_and_head_from_a_local_remote() {
    let t = Target::start_with_tools("t");
    seed_repository(&t);
    let tasks = r#"
    - git: repo=/srv/repo.git dest=/srv/app
      register: head
    - git: repo=file:///srv/repo.git dest=/srv/tagged version=v1 depth=1
      register: tagged
    - git:
        repo: /srv/repo.git
        dest: /srv/dev
        version: dev
        single_branch: yes
      register: dev
    - assert:
        that:
          - head.after | length == 40
          - tagged.after != head.after
          - dev.after != head.after
"#;
    converge(&t, &[("site.yml", &play(tasks))], "/srv", true);
    assert_eq!(
        rev(&t, "/srv/app", "HEAD"),
        rev(&t, "/srv/repo.git", "main")
    );
    assert_eq!(
        rev(&t, "/srv/tagged", "HEAD"),
        rev(&t, "/srv/repo.git", "v1^{}")
    );
    assert_eq!(rev(&t, "/srv/dev", "HEAD"), rev(&t, "/srv/repo.git", "dev"));
    assert_eq!(t.root("cat /srv/app/f"), "two\n");

    // A new commit upstream is pulled; a local change stops the update unless forced.
    t.root(
        "set -e; export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@e GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@e; \
         cd /root/w; git checkout -q main; echo three > f; git commit -qam three; git push -q /srv/repo.git main; \
         echo local > /srv/app/f",
    );
    let old = rev(&t, "/srv/app", "HEAD");
    let tasks = format!(
        r#"
    - git: repo=/srv/repo.git dest=/srv/app
      register: refused
      ignore_errors: yes
    - git: repo=/srv/repo.git dest=/srv/app force=yes
      register: forced
    - git: repo=/srv/repo.git dest=/srv/app update=no
      register: kept
    - assert:
        that:
          - refused is failed
          - refused.msg == 'Local modifications exist in the destination: /srv/app (force=no).'
          - forced is changed
          - forced.before == '{old}'
          - forced.after != forced.before
          - forced.remote_url_changed == false
          - kept is not changed
          - kept.after == forced.after
"#
    );
    run_play(&t, &play(&tasks)).assert_ok();
    assert_eq!(t.root("cat /srv/app/f"), "three\n");
}

#[test]
fn git_without_git_on_the_target_fails_with_ansibles_message() {
    let t = Target::start("t");
    let tasks = r#"
    - git: repo=/srv/repo.git dest=/srv/app
      register: r
      ignore_errors: yes
    - assert:
        that:
          - r is failed
          - r.msg.startswith('Failed to find required executable "git" in paths:')
"#;
    run_play(&t, &play(tasks)).assert_ok();
}
