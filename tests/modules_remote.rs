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
    let t = Target::start_with_net_tools("t");
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

/// An HTTP server on the target's own address (port 8081) serving /srv/www, answering a POST
/// with what it received (as JSON) and `/old` with a redirect; returns its base URL.
fn start_http_server(t: &Target) -> String {
    const SERVER: &str = r#"
import http.server, json, sys
class H(http.server.SimpleHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0))).decode()
        seen = {k: self.headers.get(v) for k, v in
                [('ctype', 'Content-Type'), ('auth', 'Authorization'), ('x', 'X-Kiln')]}
        out = json.dumps(dict(seen, method=self.command, body=body)).encode()
        self.send_response(201)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def do_GET(self):
        if self.path == '/old':
            self.send_response(301)
            self.send_header('Location', '/hello.txt')
            self.end_headers()
            return
        super().do_GET()
handler = lambda *a: H(*a, directory='/srv/www')
http.server.HTTPServer((sys.argv[1], 8081), handler).serve_forever()
"#;
    t.root(&format!(
        "mkdir -p /srv/www && printf 'hello\\n' > /srv/www/hello.txt && touch -d '2020-01-01' /srv/www/hello.txt \
         && printf '%s' {} > /root/server.py",
        support::shell_quote(SERVER)
    ));
    let address = t.address;
    t.root(&format!(
        "nohup python3 /root/server.py {address} >/dev/null 2>&1 & \
         for i in $(seq 100); do curl -s -o /dev/null http://{address}:8081/ && break; sleep 0.1; done"
    ));
    format!("http://{address}:8081")
}

#[test]
fn uri_makes_requests_with_the_targets_curl() {
    let t = Target::start_with_net_tools("t");
    let base = start_http_server(&t);
    let tasks = format!(
        r#"
    - uri: url={base}/hello.txt return_content=yes
      register: get
    - uri:
        url: "{base}/api"
        method: POST
        body: {{name: kiln, n: 2}}
        body_format: json
        headers: {{X-Kiln: yes-please}}
        user: u
        password: pw
        force_basic_auth: yes
        status_code: [200, 201]
      register: post
    - uri:
        url: "{base}/form"
        method: POST
        body: {{a: 1, b: x y}}
        body_format: form-urlencoded
        status_code: 201
      register: form
    - uri: url={base}/old
      register: moved
    - uri: url={base}/missing
      register: missing
      ignore_errors: yes
    - uri: url={base}/hello.txt creates=/etc/hostname
      register: skipped
    - assert:
        that:
          - get is not changed
          - get.status == 200
          - get.content == 'hello\n'
          - get.msg == 'OK (6 bytes)'
          - get.content_length == '6'
          - get.redirected == false
          - post.status == 201
          - post.json.method == 'POST'
          - "post.json.body | from_json == {{'name': 'kiln', 'n': 2}}"
          - post.json.ctype == 'application/json'
          - post.json.auth == 'Basic dTpwdw=='
          - post.json.x == 'yes-please'
          - form.json.body == 'a=1&b=x+y'
          - form.json.ctype == 'application/x-www-form-urlencoded'
          - moved.redirected
          - moved.url == '{base}/hello.txt'
          - missing is failed
          - missing.status == 404
          - missing.msg.startswith('Status code was 404 and not [200]: HTTP Error 404')
          - skipped.stdout == "skipped, since '/etc/hostname' exists"
"#
    );
    run_play(&t, &play(&tasks)).assert_ok();

    // A download to `dest` is sent with If-Modified-Since: the second run gets a 304 (which,
    // as in Ansible, fails unless `status_code` accepts it).
    let tasks = format!("    - uri: url={base}/hello.txt dest=/srv/copy.txt status_code=200,304\n");
    let first = converge(&t, &[("site.yml", &play(&tasks))], "/srv", false);
    assert_eq!(first.recap("t", "changed"), 1, "{}", first.stdout);
    assert_eq!(t.root("cat /srv/copy.txt"), "hello\n");
}

#[test]
fn uri_without_curl_on_the_target_names_the_fix() {
    let t = Target::start("t");
    let tasks = r#"
    - uri: url=http://127.0.0.1:9/
      register: r
      ignore_errors: yes
    - assert:
        that:
          - r is failed
          - "'needs curl on the target' in r.msg"
"#;
    run_play(&t, &play(tasks)).assert_ok();
}

/// Wheels of `kiln-demo` 1.0 and 2.0 in /srv/wheels, built on the target (no index needed).
fn seed_wheels(t: &Target) {
    const BUILD: &str = r#"
import base64, hashlib, os, zipfile
os.makedirs('/srv/wheels', exist_ok=True)
for v in ('1.0', '2.0'):
    info = f'kiln_demo-{v}.dist-info'
    files = {
        'kiln_demo/__init__.py': f'VERSION = {v!r}\n',
        f'{info}/METADATA': f'Metadata-Version: 2.1\nName: kiln-demo\nVersion: {v}\n',
        f'{info}/WHEEL': 'Wheel-Version: 1.0\nGenerator: kiln\nRoot-Is-Purelib: true\nTag: py3-none-any\n',
    }
    record = ''
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()
        record += f'{name},sha256={digest},{len(text)}\n'
    files[f'{info}/RECORD'] = record + f'{info}/RECORD,,\n'
    with zipfile.ZipFile(f'/srv/wheels/kiln_demo-{v}-py3-none-any.whl', 'w') as z:
        for name, text in files.items():
            z.writestr(name, text)
"#;
    t.root(&format!("python3 -c {}", support::shell_quote(BUILD)));
}

#[test]
fn pip_installs_upgrades_and_removes_in_a_virtualenv() {
    let t = Target::start_with_net_tools("t");
    seed_wheels(&t);
    let pip = "virtualenv=/srv/venv extra_args='--no-index --find-links /srv/wheels'";
    let tasks = format!(
        r#"
    - pip: name=kiln-demo version=1.0 {pip} virtualenv_command='python3 -m venv'
      register: installed
    - assert:
        that:
          - installed.name == ['kiln-demo']
          - installed.virtualenv == '/srv/venv'
"#
    );
    let first = converge(&t, &[("site.yml", &play(&tasks))], "/srv", true);
    assert!(first.stdout.contains("changed=1"), "{}", first.stdout);
    let version = "/srv/venv/bin/python -c 'import kiln_demo; print(kiln_demo.VERSION)'";
    assert_eq!(t.root(version), "1.0\n");

    let tasks = format!(
        r#"
    - pip: name=kiln_demo {pip}
      register: present
    - pip: name=kiln-demo state=latest {pip}
      register: latest
    - pip: name='kiln-demo>=2' {pip}
      register: newer
    - assert:
        that:
          - present is not changed
          - latest is changed
          - newer is not changed
"#
    );
    run_play(&t, &play(&tasks)).assert_ok();
    assert_eq!(t.root(version), "2.0\n");

    let tasks = "    - pip: name=kiln-demo state=absent virtualenv=/srv/venv\n";
    converge(&t, &[("site.yml", &play(tasks))], "/srv/venv", true);
    assert!(!t.check(version));
}

#[test]
fn pip_without_pip_on_the_target_fails_with_ansibles_message() {
    let t = Target::start("t");
    let tasks = r#"
    - pip: name=kiln-demo
      register: r
      ignore_errors: yes
    - assert:
        that:
          - r is failed
          - "'pip needs to be installed' in r.msg"
"#;
    run_play(&t, &play(tasks)).assert_ok();
}

#[test]
fn known_hosts_adds_replaces_hashes_and_removes_host_keys() {
    let t = Target::start("t");
    let key = |n: u8| {
        let out = t.root(&format!(
            "rm -f /tmp/k{n} /tmp/k{n}.pub; ssh-keygen -q -t ed25519 -N '' -f /tmp/k{n} && cut -d' ' -f1,2 /tmp/k{n}.pub"
        ));
        out.trim().to_string()
    };
    let (first, second, alt) = (key(1), key(2), key(3));
    t.root(&format!(
        "mkdir -p /root/.ssh && echo 'old.example.com {first}' > /root/.ssh/known_hosts"
    ));
    let tasks = format!(
        r#"
    - known_hosts:
        name: git.example.com
        key: git.example.com {first}
    - known_hosts:
        name: "[alt.example.com]:2222"
        key: "[alt.example.com]:2222 {alt}"
        path: /etc/ssh/ssh_known_hosts
        hash_host: yes
    - known_hosts: name=old.example.com state=absent
"#
    );
    converge(
        &t,
        &[("site.yml", &play(&tasks))],
        "/root/.ssh /etc/ssh",
        true,
    );
    let root_file = t.root("cat /root/.ssh/known_hosts");
    assert_eq!(root_file, format!("git.example.com {first}\n"));
    let hashed = t.root("cat /etc/ssh/ssh_known_hosts");
    assert!(
        hashed.starts_with("|1|") && !hashed.contains("alt.example"),
        "{hashed}"
    );
    // OpenSSH finds the hashed entry under the name.
    assert!(t.check("ssh-keygen -F '[alt.example.com]:2222' -f /etc/ssh/ssh_known_hosts"));

    // A new key of the same type replaces the old one; a key for another name is refused.
    let tasks = format!(
        r#"
    - known_hosts:
        name: git.example.com
        key: git.example.com {second}
      register: replaced
    - known_hosts:
        name: git.example.com
        key: other.example.com {second}
      register: wrong
      ignore_errors: yes
    - assert:
        that:
          - replaced is changed
          - wrong is failed
          - wrong.msg == 'Host parameter does not match host field in supplied key'
"#
    );
    run_play(&t, &play(&tasks)).assert_ok();
    assert_eq!(
        t.root("cat /root/.ssh/known_hosts"),
        format!("git.example.com {second}\n")
    );
}

#[test]
fn wait_for_connection_waits_its_delay_and_reports_elapsed() {
    let t = Target::start("t");
    let tasks = r#"
    - wait_for_connection: delay=1 sleep=1 timeout=10 connect_timeout=5
      register: w
    - assert:
        that:
          - w is not changed
          - w.elapsed >= 1
      when: w is not skipped
"#;
    let started = std::time::Instant::now();
    converge(&t, &[("site.yml", &play(tasks))], "/etc", false);
    // Check mode skips the wait; the two real runs each wait the second.
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
}
