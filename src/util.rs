//! Small helpers any layer may use: digests, durations and ages, random ids.
//! A leaf module: it imports nothing from the rest of kiln (wall-clock time is `clock.rs`,
//! the other leaf beside it).

use sha1::{Digest, Sha1};

/// The lowercase hex SHA-1 of `data` (Ansible's `checksum`).
pub fn sha1_hex(data: &[u8]) -> String {
    let digest = Sha1::digest(data);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hex digest of `data` with an Ansible checksum algorithm name (`sha256`, `md5`, …);
/// None for an algorithm kiln does not know.
pub fn digest_hex(algorithm: &str, data: &[u8]) -> Option<String> {
    use sha2::Digest as _;
    let bytes: Vec<u8> = match algorithm {
        "sha1" => Sha1::digest(data).to_vec(),
        "sha224" => sha2::Sha224::digest(data).to_vec(),
        "sha256" => sha2::Sha256::digest(data).to_vec(),
        "sha384" => sha2::Sha384::digest(data).to_vec(),
        "sha512" => sha2::Sha512::digest(data).to_vec(),
        "md5" => md5::Md5::digest(data).to_vec(),
        _ => return None,
    };
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `3d`, `-1w`, `90` (seconds) → signed seconds (Ansible's `find` ages).
pub fn parse_age(age: &str) -> Option<i64> {
    let (number, unit) = split_unit(age);
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        "w" => 604800,
        _ => return None,
    };
    number.parse::<i64>().ok().map(|n| n * scale)
}

/// `90s`, `30m`, `2h`, `1d` → a duration (a non-negative `parse_age`).
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    parse_age(text)
        .filter(|s| *s >= 0)
        .map(|s| std::time::Duration::from_secs(s as u64))
}

/// Splits `10k` into (`10`, `k`).
pub fn split_unit(text: &str) -> (&str, &str) {
    let text = text.trim();
    let at = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    (&text[..at], &text[at..])
}

/// A unique, unpredictable id (40 hex digits, 160 bits from the OS's CSPRNG) for nonces and
/// temporary names that other users of a target must not guess.
pub fn random_id() -> String {
    let mut bytes = [0u8; 20];
    // Without the OS's random source no name or nonce kiln makes would be safe; there is no
    // sensible fallback (the kernel's getrandom only fails on broken systems).
    if let Err(e) = getrandom::getrandom(&mut bytes) {
        panic!("the operating system's random number generator failed: {e}");
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_and_durations() {
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            digest_hex("sha1", b"").as_deref(),
            Some(sha1_hex(b"").as_str())
        );
        assert_eq!(digest_hex("crc32", b""), None);
        assert_eq!(parse_age("-2w"), Some(-1_209_600));
        assert_eq!(
            parse_duration("2h"),
            Some(std::time::Duration::from_secs(7200))
        );
        assert_eq!(parse_duration("-1d"), None);
        assert_eq!(split_unit(" 10k "), ("10", "k"));
        let (a, b) = (random_id(), random_id());
        assert_eq!(a.len(), 40);
        assert_ne!(a, b);
    }
}
