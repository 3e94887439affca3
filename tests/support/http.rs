//! A static file server for tests: serves a directory over HTTP/1.1 on one address (the
//! local apt repository for systemd targets, files for `get_url`). GET and HEAD only; every
//! response closes its connection. Files carry `Last-Modified` and an unchanged one answers
//! `If-Modified-Since` with 304, as a Debian mirror does: apt then leaves its lists alone.
//! Stops accepting when dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct FileServer {
    pub address: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl FileServer {
    pub fn start(address: SocketAddr, root: &Path) -> FileServer {
        Self::try_start(address, root)
            .unwrap_or_else(|| panic!("bind the test file server on {address}"))
    }

    /// None when `address` cannot be bound (yet).
    pub fn try_start(address: SocketAddr, root: &Path) -> Option<FileServer> {
        let listener = TcpListener::bind(address).ok()?;
        let root = root.to_path_buf();
        let address = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let root = root.clone();
                    std::thread::spawn(move || {
                        let _ = serve(stream, &root);
                    });
                }
            }
        });
        Some(FileServer { address, stop })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.address);
    }
}

fn serve(stream: TcpStream, root: &Path) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut if_modified_since = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("if-modified-since") {
                if_modified_since = Some(value.trim().to_string());
            }
        }
    }
    let mut parts = request.split_whitespace();
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or("/");
    let path = percent_decode(target.split('?').next().unwrap_or("/"));
    let relative = Path::new(path.trim_start_matches('/'));
    let safe = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    let file = root.join(relative);
    let mut out = stream;
    let last_modified = std::fs::metadata(&file)
        .and_then(|m| m.modified())
        .map(http_date)
        .unwrap_or_default();
    match std::fs::read(&file) {
        Ok(_) if safe && file.is_file() && if_modified_since == Some(last_modified.clone()) => {
            out.write_all(b"HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n")?;
        }
        Ok(body) if safe && file.is_file() => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nLast-Modified: {last_modified}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            if method != "HEAD" {
                out.write_all(&body)?;
            }
        }
        _ => {
            out.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )?;
        }
    }
    out.flush()
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`
fn http_date(at: std::time::SystemTime) -> String {
    let seconds = at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let t = kiln::clock::UtcTime::from_epoch(seconds);
    // 1970-01-01 was a Thursday.
    let weekday =
        ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(seconds / 86_400 % 7) as usize];
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(t.month - 1) as usize];
    format!(
        "{weekday}, {:02} {month} {} {:02}:{:02}:{:02} GMT",
        t.day, t.year, t.hour, t.minute, t.second
    )
}

/// `%2b` → `+` (apt escapes the `+` in Debian versions).
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
