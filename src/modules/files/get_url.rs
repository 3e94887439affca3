//! `get_url`: a file downloaded from HTTP(S) to the target. The download runs on the
//! controller (targets need no curl, wget or Python) and the bytes go through the atomic file
//! writer, so an unchanged download reports `ok`. With `checksum`, a file already there with
//! that checksum is not downloaded again, and a download that does not match fails.

use std::time::Duration;

use async_trait::async_trait;

use super::write::{converge, converge_attributes, probe, Attributes, WriteRequest};
use crate::connection::quote;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};
use crate::util::digest_hex;

pub struct GetUrl;

/// Downloads larger than this are refused (they travel through controller memory).
const DOWNLOAD_LIMIT: u64 = 2 * 1024 * 1024 * 1024;

struct Request {
    url: String,
    headers: Vec<(String, String)>,
    timeout: u64,
    basic_auth: Option<(String, String)>,
    validate_certs: bool,
}

/// Fetches a URL on the controller (blocking; run it off the async threads).
fn fetch(request: &Request) -> Result<(u16, Vec<u8>), String> {
    let mut config = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(request.timeout)))
        .http_status_as_error(false);
    if !request.validate_certs {
        config = config.tls_config(
            ureq::tls::TlsConfig::builder()
                .disable_verification(true)
                .build(),
        );
    }
    let agent = ureq::Agent::new_with_config(config.build());
    let mut call = agent.get(&request.url);
    for (k, v) in &request.headers {
        call = call.header(k.as_str(), v.as_str());
    }
    if let Some((user, password)) = &request.basic_auth {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        call = call.header("Authorization", format!("Basic {token}"));
    }
    let mut response = call.call().map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(DOWNLOAD_LIMIT)
        .read_to_vec()
        .map_err(|e| e.to_string())?;
    Ok((status, body))
}

async fn fetch_async(request: Request) -> Result<(u16, Vec<u8>), ModuleError> {
    let url = request.url.clone();
    tokio::task::spawn_blocking(move || fetch(&request))
        .await
        .map_err(|e| ModuleError::Failed(format!("get_url: download task failed: {e}")))?
        .map_err(|e| ModuleError::Failed(format!("Request failed: {url}: {e}")))
}

/// `sha256:abc…` → (algorithm, digest); the digest may be a URL of a checksums file.
fn split_checksum(checksum: &str) -> Result<(String, String), ModuleError> {
    let (algorithm, value) = checksum.split_once(':').ok_or_else(|| {
        ModuleError::Args(format!(
            "get_url: checksum must be <algorithm>:<digest>, got '{checksum}'"
        ))
    })?;
    let algorithm = algorithm.to_ascii_lowercase();
    if digest_hex(&algorithm, b"").is_none() {
        return Err(ModuleError::Args(format!(
            "get_url: unsupported checksum algorithm '{algorithm}' (sha1, sha224, sha256, sha384, sha512, md5)"
        )));
    }
    Ok((algorithm, value.trim().to_string()))
}

/// The digest for `file_name` in a checksums file (`<digest>  <name>` lines), or its only one.
pub fn digest_from_listing(listing: &str, file_name: &str) -> Option<String> {
    let entries: Vec<(&str, &str)> = listing
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some((parts.next()?, parts.next().unwrap_or("")))
        })
        .collect();
    if let [(digest, _)] = entries[..] {
        return Some(digest.to_string());
    }
    entries
        .iter()
        .find(|(_, name)| name.trim_start_matches(['*', '.', '/']) == file_name)
        .map(|(d, _)| d.to_string())
}

fn url_file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let name = path.rsplit('/').next().unwrap_or("");
    if name.is_empty() {
        "index.html".into()
    } else {
        name.to_string()
    }
}

#[async_trait]
impl Module for GetUrl {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let url = args.required_str(&["url"])?;
        let dest = args.required_path(ctx, &["dest"]).await?;
        let checksum = args.str(&["checksum"])?;
        let force = args.bool("force", false)?;
        let backup = args.bool("backup", false)?;
        let timeout = args.int("timeout")?.unwrap_or(10).max(1) as u64;
        let validate_certs = args.bool("validate_certs", true)?;
        let username = args.str(&["url_username", "username"])?;
        let password = args.str(&["url_password", "password"])?;
        let mut headers = Vec::new();
        if let Some(h) = args.raw("headers") {
            for key in h
                .try_iter()
                .map_err(|_| ModuleError::Args("get_url: headers must be a mapping".into()))?
            {
                let value = h.get_item(&key).unwrap_or_default();
                headers.push((key.to_string(), value.to_string()));
            }
        }
        if let Some(agent) = args.str(&["http_agent"])? {
            headers.push(("User-Agent".into(), agent));
        }
        let attrs = Attributes::from_args(&mut args)?;
        let _ = args.raw_any(&[
            "force_basic_auth",
            "use_proxy",
            "tmp_dest",
            "use_gssapi",
            "use_netrc",
            "client_cert",
            "client_key",
            "unredirected_headers",
            "decompress",
            "ciphers",
        ]);
        args.ignore(crate::modules::args::IGNORED_FILE_OPTIONS);
        args.finish()?;
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(ModuleError::Args(format!(
                "get_url: only http:// and https:// URLs are supported, got '{url}'"
            )));
        }
        let request = |url: &str| Request {
            url: url.to_string(),
            headers: headers.clone(),
            timeout,
            basic_auth: username
                .clone()
                .map(|u| (u, password.clone().unwrap_or_default())),
            validate_certs,
        };
        let is_dir = ctx
            .run(&format!("[ -d {} ] && echo dir; true", quote(&dest)), None)
            .await?
            .stdout_text()
            .contains("dir");
        let dest = if is_dir {
            format!("{}/{}", dest.trim_end_matches('/'), url_file_name(&url))
        } else {
            dest
        };
        let expected = match &checksum {
            None => None,
            Some(c) => {
                let (algorithm, value) = split_checksum(c)?;
                let digest = if value.starts_with("http://") || value.starts_with("https://") {
                    let (_, listing) = fetch_async(request(&value)).await?;
                    digest_from_listing(&String::from_utf8_lossy(&listing), &url_file_name(&url))
                        .ok_or_else(|| {
                            ModuleError::Failed(format!(
                                "Unable to find a checksum for file '{}' in '{value}'",
                                url_file_name(&url)
                            ))
                        })?
                } else {
                    value
                };
                Some((algorithm, digest.to_ascii_lowercase()))
            }
        };
        // An existing file is kept unless forced, or unless its checksum is wrong; the
        // checksum is taken on the target (the file never travels to the controller).
        let (state, _) = probe(ctx, &dest, None).await?;
        if state.exists && !force {
            let current_ok = match &expected {
                None => true,
                Some((algorithm, digest)) if algorithm == "sha1" => {
                    state.checksum.as_deref() == Some(digest.as_str())
                }
                Some((algorithm, digest)) => {
                    let out = ctx
                        .run(&format!("{algorithm}sum -- {}", quote(&dest)), None)
                        .await?;
                    out.stdout_text().split_whitespace().next() == Some(digest.as_str())
                }
            };
            if current_ok {
                let mut result = converge_attributes(ctx, &dest, &state, &attrs).await?;
                result.msg = Some("file already exists".into());
                return Ok(result.with("url", url));
            }
        }
        if ctx.check_mode {
            return Ok(ModuleResult::changed(true)
                .with_msg("the file would be downloaded")
                .with("dest", dest)
                .with("url", url));
        }
        let (status, body) = fetch_async(request(&url)).await?;
        if !(200..300).contains(&status) {
            return Err(ModuleResult::default()
                .with("status_code", status)
                .with("url", url.as_str())
                .fail(format!("Request failed: HTTP Error {status}")));
        }
        if let Some((algorithm, digest)) = &expected {
            let actual = digest_hex(algorithm, &body).unwrap_or_default();
            if &actual != digest {
                return Err(ModuleError::Failed(format!(
                    "The checksum for {dest} did not match {digest}; it was {actual}."
                )));
            }
        }
        let size = body.len();
        let checksum_src = crate::util::sha1_hex(&body);
        let result = converge(
            ctx,
            WriteRequest {
                dest: dest.clone(),
                content: body,
                attrs,
                backup,
                validate: None,
                force: true,
                follow: false,
            },
        )
        .await?;
        Ok(result
            .with("dest", dest)
            .with("url", url)
            .with("status_code", status)
            .with("size", size)
            .with("checksum_src", checksum_src)
            .with("msg", format!("OK ({size} bytes)")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_listings_and_names() {
        let listing = "abc123  app-1.0.tar.gz\ndef456 *other.tar.gz\n";
        assert_eq!(
            digest_from_listing(listing, "other.tar.gz").as_deref(),
            Some("def456")
        );
        assert_eq!(digest_from_listing("feed\n", "x").as_deref(), Some("feed"));
        assert_eq!(url_file_name("https://h/a/b.tgz?x=1"), "b.tgz");
        assert_eq!(url_file_name("https://h/"), "index.html");
        assert!(split_checksum("sha256:ab").is_ok());
        assert!(split_checksum("crc32:ab").is_err());
    }
}
