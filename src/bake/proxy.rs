//! A minimal HTTP forward proxy for build instances: they live in their own network
//! namespace with no route out, and apt inside fetches through this proxy on the host's end
//! of their veth (plain `GET http://…` requests, and `CONNECT` tunnels for https). One
//! request per connection: the build's apt configuration turns pipelining off.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Request heads larger than this are refused.
const HEAD_LIMIT: usize = 64 * 1024;

pub struct Proxy {
    pub address: SocketAddr,
    task: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(bind: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind(bind).await?;
        let address = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = serve(client).await;
                });
            }
        });
        Ok(Proxy { address, task })
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Splits an absolute `http://host[:port]/path` into (host:port, /path).
pub fn split_target(target: &str) -> Option<(String, String)> {
    let rest = target.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let authority = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Some((authority, path.to_string()))
}

/// The request head rewritten for the origin server: origin-form target, no proxy or
/// keep-alive headers, `Connection: close`.
pub fn rewrite_head(head: &str, path: &str) -> String {
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or("GET");
    let _ = parts.next();
    let version = parts.next().unwrap_or("HTTP/1.1");
    let mut out = format!("{method} {path} {version}\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let name = line
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if matches!(
            name.as_str(),
            "proxy-connection" | "connection" | "keep-alive" | "proxy-authorization"
        ) {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

async fn serve(mut client: TcpStream) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buffer.len() > HEAD_LIMIT {
            return client
                .write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n")
                .await;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let rest = buffer[head_end..].to_vec();
    let mut first = head.split_whitespace();
    let method = first.next().unwrap_or_default().to_string();
    let target = first.next().unwrap_or_default().to_string();
    if method == "CONNECT" {
        let mut upstream = match TcpStream::connect(&target).await {
            Ok(s) => s,
            Err(_) => return client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await,
        };
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
        upstream.write_all(&rest).await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        return Ok(());
    }
    let Some((authority, path)) = split_target(&target) else {
        return client
            .write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
            .await;
    };
    let mut upstream = match TcpStream::connect(&authority).await {
        Ok(s) => s,
        Err(_) => {
            return client
                .write_all(b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n")
                .await
        }
    };
    upstream
        .write_all(rewrite_head(&head, &path).as_bytes())
        .await?;
    upstream.write_all(&rest).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_targets_and_rewritten_heads() {
        assert_eq!(
            split_target("http://deb.debian.org/debian/dists/bookworm/InRelease"),
            Some((
                "deb.debian.org:80".into(),
                "/debian/dists/bookworm/InRelease".into()
            ))
        );
        assert_eq!(
            split_target("http://127.0.0.1:8080"),
            Some(("127.0.0.1:8080".into(), "/".into()))
        );
        let head = "GET http://h/x HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nUser-Agent: apt\r\n\r\n";
        assert_eq!(
            rewrite_head(head, "/x"),
            "GET /x HTTP/1.1\r\nHost: h\r\nUser-Agent: apt\r\nConnection: close\r\n\r\n"
        );
    }
}
