//! `uri`: an HTTP request made from the target with its curl, answered as ansible-core's
//! module answers (`status`, `url`, `redirected`, `elapsed`, the response headers as keys,
//! `content`, `json`, `msg`). The request (URL, headers, credentials, body) reaches curl as a
//! configuration on stdin, never in its argument list. Like Ansible's, the module does not
//! run in check mode.

use async_trait::async_trait;
use base64::Engine;
use minijinja::value::ValueKind;
use minijinja::Value;

use crate::connection::quote;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Uri;

/// The request, from the module's options.
#[derive(Debug, Default)]
pub struct Request {
    pub url: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub timeout: i64,
    pub validate_certs: bool,
    pub follow_redirects: bool,
    /// `-z`: sent as If-Modified-Since from the file's time, as Ansible does for `dest`.
    pub dest: Option<String>,
}

/// A string in curl's configuration syntax.
fn config_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Request {
    /// curl's configuration for the request (its stdin).
    pub fn curl_config(&self) -> String {
        let mut lines = vec![
            format!("url = {}", config_string(&self.url)),
            format!("request = {}", config_string(&self.method)),
            format!("max-time = {}", self.timeout),
        ];
        for (k, v) in &self.headers {
            lines.push(format!("header = {}", config_string(&format!("{k}: {v}"))));
        }
        if let Some(user) = &self.user {
            let pass = self.password.as_deref().unwrap_or_default();
            lines.push(format!(
                "user = {}",
                config_string(&format!("{user}:{pass}"))
            ));
        }
        if let Some(body) = &self.body {
            lines.push(format!("data-raw = {}", config_string(body)));
        }
        if !self.validate_certs {
            lines.push("insecure".into());
        }
        if self.follow_redirects {
            lines.push("location".into());
        }
        if let Some(dest) = &self.dest {
            lines.push(format!("time-cond = {}", config_string(dest)));
        }
        lines.join("\n") + "\n"
    }
}

/// Python's `urlencode` (with `quote_plus`) over a mapping's pairs.
pub fn form_urlencoded(pairs: &[(String, String)]) -> String {
    let enc = |s: &str| {
        let mut out = String::new();
        for b in s.bytes() {
            match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                b => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// What came back from the target's script.
#[derive(Debug, Default, PartialEq)]
pub struct Response {
    pub no_curl: bool,
    /// `creates`/`removes` decided to skip the request.
    pub skipped: Option<String>,
    pub curl_rc: i32,
    pub curl_error: String,
    pub status: i64,
    pub redirects: u32,
    pub seconds: f64,
    pub url: String,
    /// The last response's status line reason and headers.
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub wrote: bool,
}

pub fn parse(text: &str) -> Response {
    let mut r = Response::default();
    let mut errors = Vec::new();
    for line in text.lines() {
        if line == "nocurl" {
            r.no_curl = true;
        } else if let Some(why) = line.strip_prefix("skip:") {
            r.skipped = Some(why.to_string());
        } else if let Some(rc) = line.strip_prefix("rc:") {
            r.curl_rc = rc.trim().parse().unwrap_or(-1);
        } else if let Some(e) = line.strip_prefix("e:") {
            errors.push(e.to_string());
        } else if let Some(w) = line.strip_prefix("kiln-curl:") {
            let mut parts = w.splitn(4, ' ');
            r.status = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            r.redirects = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            r.seconds = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
            r.url = parts.next().unwrap_or_default().to_string();
        } else if let Some(h) = line.strip_prefix("h:") {
            let h = h.trim_end_matches('\r');
            if let Some(status_line) = h.strip_prefix("HTTP/") {
                // Each response of a redirect chain starts a new block: keep the last.
                r.headers.clear();
                r.reason = status_line
                    .splitn(3, ' ')
                    .nth(2)
                    .unwrap_or_default()
                    .to_string();
            } else if let Some((k, v)) = h.split_once(':') {
                r.headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        } else if let Some(b) = line.strip_prefix("body:") {
            r.body = base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .unwrap_or_default();
        } else if line == "wrote" {
            r.wrote = true;
        }
    }
    r.curl_error = errors.join("\n");
    r
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the content type is one Ansible parses as JSON.
    fn is_json(&self) -> bool {
        let Some(ct) = self.header("content-type") else {
            return false;
        };
        let sub = ct
            .split(';')
            .next()
            .unwrap_or_default()
            .split('/')
            .nth(1)
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let sub = sub.rsplit('+').next().unwrap_or_default();
        matches!(sub, "json" | "javascript")
    }

    /// Ansible's `msg`: `OK (N bytes)` for a success, else the HTTP error.
    fn message(&self) -> String {
        let length = self.header("content-length").unwrap_or("unknown");
        if self.status < 400 {
            format!("OK ({length} bytes)")
        } else {
            format!("HTTP Error {}: {}", self.status, self.reason.trim())
        }
    }
}

/// The script: curl's presence, `creates`/`removes`, the request, what came back.
fn command(dest: Option<&str>, creates: Option<&str>, removes: Option<&str>, ok: &[i64]) -> String {
    let mut s = String::from("command -v curl >/dev/null 2>&1 || { echo nocurl; exit 0; }; ");
    if let Some(c) = creates {
        s.push_str(&format!(
            "[ -e {q} ] && {{ printf 'skip:%s\\n' {m}; exit 0; }}; ",
            q = quote(c),
            m = quote(&format!("skipped, since '{c}' exists"))
        ));
    }
    if let Some(r) = removes {
        s.push_str(&format!(
            "[ -e {q} ] || {{ printf 'skip:%s\\n' {m}; exit 0; }}; ",
            q = quote(r),
            m = quote(&format!("skipped, since '{r}' does not exist"))
        ));
    }
    s.push_str(
        "k_d=$(mktemp -d) || exit 1; \
         curl -K - -sS -o \"$k_d/b\" -D \"$k_d/h\" -w 'kiln-curl:%{http_code} %{num_redirects} %{time_total} %{url_effective}\\n' >\"$k_d/w\" 2>\"$k_d/e\"; \
         echo \"rc:$?\"; sed 's/^/e:/' \"$k_d/e\"; grep '^kiln-curl:' \"$k_d/w\"; sed 's/^/h:/' \"$k_d/h\"; ",
    );
    if let Some(dest) = dest {
        let codes: Vec<String> = ok
            .iter()
            .filter(|c| **c != 304)
            .map(|c| c.to_string())
            .collect();
        s.push_str(&format!(
            "case \"$(sed -n 's/^kiln-curl:\\([0-9]*\\) .*/\\1/p' \"$k_d/w\")\" in {codes}) [ -f \"$k_d/b\" ] && cat \"$k_d/b\" > {dest} && echo wrote;; esac; ",
            codes = if codes.is_empty() { "none".into() } else { codes.join("|") },
            dest = quote(dest),
        ));
    } else {
        s.push_str("[ -f \"$k_d/b\" ] && { printf 'body:'; base64 -w0 \"$k_d/b\"; echo; }; ");
    }
    s.push_str("rm -rf \"$k_d\"");
    s
}

/// A response header as Ansible names its key: lower case, `-` as `_`.
fn header_key(name: &str) -> String {
    name.to_ascii_lowercase().replace('-', "_")
}

/// The body option as text for `body_format`.
fn encode_body(body: Value, format: &str) -> Result<String, ModuleError> {
    if let Some(s) = body.as_str() {
        return Ok(s.to_string());
    }
    match format {
        "json" => serde_json::to_string(&body)
            .map_err(|e| ModuleError::Args(format!("uri: the body is not JSON: {e}"))),
        "form-urlencoded" if body.kind() == ValueKind::Map => {
            let pairs: Vec<(String, String)> = body
                .try_iter()
                .into_iter()
                .flatten()
                .map(|k| {
                    let v = body.get_item(&k).unwrap_or_default();
                    (k.to_string(), v.to_string())
                })
                .collect();
            Ok(form_urlencoded(&pairs))
        }
        "form-urlencoded" => Err(ModuleError::Failed(
            "failed to parse body as form_urlencoded: the body must be a mapping or a string"
                .into(),
        )),
        _ => Ok(body.to_string()),
    }
}

#[async_trait]
impl Module for Uri {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let url = args.required_str(&["url"])?;
        let method = args
            .str(&["method"])?
            .unwrap_or_else(|| "GET".into())
            .to_uppercase();
        let body = args.raw("body");
        let body_format = args
            .choice("body_format", &["raw", "json", "form-urlencoded"], "raw")?
            .to_lowercase();
        let mut headers: Vec<(String, String)> = match args.raw("headers") {
            Some(h) if h.kind() == ValueKind::Map => h
                .try_iter()
                .into_iter()
                .flatten()
                .map(|k| {
                    (
                        k.to_string(),
                        h.get_item(&k).unwrap_or_default().to_string(),
                    )
                })
                .collect(),
            Some(_) => {
                return Err(ModuleError::Args(
                    "uri: option 'headers' must be a mapping".into(),
                ))
            }
            None => vec![],
        };
        let status_code: Vec<i64> = match args.list(&["status_code"])? {
            codes if codes.is_empty() => vec![200],
            codes => codes
                .iter()
                .map(|c| {
                    c.parse().map_err(|_| {
                        ModuleError::Args(format!("uri: status code '{c}' is not an integer"))
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let return_content = args.bool("return_content", false)?;
        let dest = args.str(&["dest"])?;
        let creates = args.str(&["creates"])?;
        let removes = args.str(&["removes"])?;
        let timeout = args.int("timeout")?.unwrap_or(30);
        let validate_certs = args.bool("validate_certs", true)?;
        let user = args.str(&["url_username", "user"])?;
        let password = args.str(&["url_password", "password"])?;
        args.bool("force_basic_auth", false)?;
        let follow = args.choice(
            "follow_redirects",
            &["all", "no", "none", "safe", "urllib2", "yes"],
            "safe",
        )?;
        args.ignore(&[
            "http_agent",
            "use_proxy",
            "decompress",
            "use_netrc",
            "use_gssapi",
        ]);
        args.finish()?;
        if !method.bytes().all(|b| b.is_ascii_uppercase()) || method.is_empty() {
            return Err(ModuleError::Failed(
                "Parameter 'method' needs to be a single word in uppercase, like GET or POST."
                    .into(),
            ));
        }
        if ctx.check_mode {
            let mut r = ModuleResult::changed(false)
                .with_msg("remote module (uri) does not support check mode");
            r.skipped = true;
            return Ok(r);
        }
        let content_type = match body_format.as_str() {
            "json" => Some("application/json"),
            "form-urlencoded" => Some("application/x-www-form-urlencoded"),
            _ => None,
        };
        if let Some(ct) = content_type {
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                headers.push(("Content-Type".into(), ct.into()));
            }
        }
        let body = body.map(|b| encode_body(b, &body_format)).transpose()?;
        let request = Request {
            url: url.clone(),
            follow_redirects: match follow.as_str() {
                "no" | "none" => false,
                "safe" => matches!(method.as_str(), "GET" | "HEAD"),
                _ => true,
            },
            method,
            headers,
            body,
            user,
            password,
            timeout,
            validate_certs,
            dest: dest.clone(),
        };
        let script = command(
            dest.as_deref(),
            creates.as_deref(),
            removes.as_deref(),
            &status_code,
        );
        let out = ctx
            .run_ok(&script, Some(request.curl_config().into_bytes()), "uri")
            .await?;
        let resp = parse(&out.stdout_text());
        if resp.no_curl {
            return Err(ModuleError::Failed(
                "uri: kiln's native uri needs curl on the target: install curl (e.g. with the apt module)".into(),
            ));
        }
        if let Some(why) = resp.skipped {
            return Ok(ModuleResult::changed(false).with("stdout", why));
        }
        let mut r = ModuleResult::changed(resp.wrote);
        if resp.curl_rc != 0 && resp.status == 0 {
            return Err(r
                .with("status", -1)
                .with("url", url)
                .with("elapsed", 0)
                .fail(format!(
                    "Status code was -1 and not {status_code:?}: Request failed: {}",
                    resp.curl_error.trim()
                )));
        }
        for (k, v) in &resp.headers {
            r = r.with(&header_key(k), v.clone());
        }
        let content = String::from_utf8_lossy(&resp.body).into_owned();
        if resp.is_json() && !resp.body.is_empty() {
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(&content) {
                r = r.with("json", Value::from(minijinja::value::Serde(json)));
            }
        }
        r = r
            .with("status", resp.status)
            .with("url", resp.url.clone())
            .with("redirected", resp.redirects > 0)
            .with("elapsed", resp.seconds as i64)
            .with("cookies", Value::from_iter(Vec::<(String, String)>::new()))
            .with("cookies_string", "");
        if let Some(dest) = &dest {
            r = r.with("path", dest.clone());
        }
        if return_content || !status_code.contains(&resp.status) {
            r = r.with("content", content);
        }
        if !status_code.contains(&resp.status) {
            let msg = format!(
                "Status code was {} and not {status_code:?}: {}",
                resp.status,
                resp.message()
            );
            return Err(r.fail(msg));
        }
        Ok(r.with_msg(resp.message()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_reaches_curl_as_quoted_configuration() {
        let request = Request {
            url: "http://h/x?a=\"b\"".into(),
            method: "POST".into(),
            headers: vec![("X-A".into(), "1".into())],
            body: Some("{\"k\": \"v\\n\"}\n".into()),
            user: Some("u".into()),
            password: Some("p\"w".into()),
            timeout: 5,
            validate_certs: false,
            follow_redirects: true,
            dest: None,
        };
        assert_eq!(
            request.curl_config(),
            "url = \"http://h/x?a=\\\"b\\\"\"\nrequest = \"POST\"\nmax-time = 5\n\
             header = \"X-A: 1\"\nuser = \"u:p\\\"w\"\n\
             data-raw = \"{\\\"k\\\": \\\"v\\\\n\\\"}\\n\"\ninsecure\nlocation\n"
        );
    }

    #[test]
    fn forms_encode_as_pythons_urlencode() {
        let pairs = [
            ("name".to_string(), "a b&c".to_string()),
            ("x".into(), "é/~".into()),
        ];
        assert_eq!(form_urlencoded(&pairs), "name=a+b%26c&x=%C3%A9%2F~");
    }

    #[test]
    fn the_last_response_of_a_redirect_chain_is_reported() {
        let text = "rc:0\nkiln-curl:200 1 0.012 http://h/new\n\
            h:HTTP/1.0 301 Moved Permanently\r\nh:Location: /new\r\nh:\r\n\
            h:HTTP/1.0 200 OK\r\nh:Content-Type: application/json\r\nh:Content-Length: 8\r\nh:\r\n\
            body:eyJhIjogMX0=\n";
        let r = parse(text);
        assert_eq!(r.status, 200);
        assert_eq!(r.redirects, 1);
        assert_eq!(r.url, "http://h/new");
        assert_eq!(r.reason, "OK");
        assert_eq!(r.header("location"), None);
        assert!(r.is_json());
        assert_eq!(r.body, b"{\"a\": 1}");
        assert_eq!(r.message(), "OK (8 bytes)");
        let missing = parse("rc:0\nkiln-curl:404 0 0.1 http://h/x\nh:HTTP/1.1 404 Not Found\r\n");
        assert_eq!(missing.message(), "HTTP Error 404: Not Found");
        assert_eq!(header_key("Content-Type"), "content_type");
    }
}
