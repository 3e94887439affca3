//! `password_hash` as Ansible's (through passlib): crypt(3) strings for sha512_crypt,
//! sha256_crypt, md5_crypt and bcrypt, with passlib's default rounds and salt sizes.

use md5::Md5;
use minijinja::value::Kwargs;
use minijinja::{Error, ErrorKind, Value};
use sha2::{Digest, Sha256, Sha512};

const CRYPT_ALPHABET: &[u8; 64] =
    b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

/// `password_hash(hashtype='sha512', salt=None, rounds=None, ident=None, salt_size=None)`.
pub fn password_hash(
    password: Value,
    hashtype: Option<String>,
    salt: Option<Value>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let password = password.to_string();
    let hashtype = match hashtype {
        Some(h) => h,
        None => kwargs
            .get::<Option<String>>("hashtype")?
            .unwrap_or_else(|| "sha512".into()),
    };
    let salt = match salt {
        Some(s) if !s.is_none() => Some(s.to_string()),
        _ => kwargs.get::<Option<String>>("salt")?,
    };
    let rounds = kwargs.get::<Option<u32>>("rounds")?;
    let salt_size = kwargs.get::<Option<usize>>("salt_size")?;
    let ident = kwargs.get::<Option<String>>("ident")?;
    kwargs.assert_all_used()?;
    crypt(
        &password,
        &hashtype,
        salt,
        rounds,
        salt_size,
        ident.as_deref(),
    )
}

/// The salt size passlib uses for `hashtype` (None: not a supported scheme).
pub fn salt_size(hashtype: &str) -> Option<usize> {
    match hashtype {
        "sha512" | "sha512_crypt" | "sha256" | "sha256_crypt" => Some(16),
        "md5" | "md5_crypt" => Some(8),
        "blowfish" | "bcrypt" => Some(22),
        _ => None,
    }
}

/// `password` hashed by `hashtype` with `salt` (a random one when None), as passlib would.
pub fn crypt(
    password: &str,
    hashtype: &str,
    salt: Option<String>,
    rounds: Option<u32>,
    salt_size: Option<usize>,
    ident: Option<&str>,
) -> Result<String, Error> {
    let salt_of = |size: usize| salt.clone().unwrap_or_else(|| random_salt(size));
    match hashtype {
        "sha512" | "sha512_crypt" => {
            let salt = salt_of(salt_size.unwrap_or(16));
            Ok(sha_crypt::<Sha512>(password, &salt, rounds.unwrap_or(656_000)))
        }
        "sha256" | "sha256_crypt" => {
            let salt = salt_of(salt_size.unwrap_or(16));
            Ok(sha_crypt::<Sha256>(password, &salt, rounds.unwrap_or(535_000)))
        }
        "md5" | "md5_crypt" => Ok(md5_crypt(password, &salt_of(salt_size.unwrap_or(8)))),
        "blowfish" | "bcrypt" => bcrypt_hash(
            password,
            &salt_of(22),
            rounds.unwrap_or(12),
            ident.unwrap_or("2b"),
        ),
        other => Err(invalid(format!(
            "password_hash: {other} is not in the list of supported passlib algorithms: md5, blowfish, sha256, sha512"
        ))),
    }
}

/// A salt of `size` characters from crypt's alphabet, from the OS's random source.
pub fn random_salt(size: usize) -> String {
    let mut bytes = vec![0u8; size];
    if getrandom::getrandom(&mut bytes).is_err() {
        bytes.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    }
    bytes
        .iter()
        .map(|b| CRYPT_ALPHABET[usize::from(b % 64)] as char)
        .collect()
}

/// crypt's base-64 of `bytes` taken three at a time in `order` (`None`: a zero byte).
fn encode(bytes: &[u8], order: &[[Option<usize>; 3]], tail: usize) -> String {
    let mut out = String::new();
    for (n, group) in order.iter().enumerate() {
        let at = |i: Option<usize>| i.map_or(0u32, |i| u32::from(bytes[i]));
        let mut w = (at(group[0]) << 16) | (at(group[1]) << 8) | at(group[2]);
        let chars = if n + 1 == order.len() { tail } else { 4 };
        for _ in 0..chars {
            out.push(CRYPT_ALPHABET[(w & 0x3f) as usize] as char);
            w >>= 6;
        }
    }
    out
}

/// The byte order SHA-crypt writes its digest in (Drepper's specification): groups of three
/// bytes a third of the digest apart, rotated each group (one way for SHA-512, the other for
/// SHA-256).
fn sha_order(third: usize, sha512: bool) -> Vec<[Option<usize>; 3]> {
    (0..third)
        .map(|k| {
            let (a, b, c) = (k, k + third, k + 2 * third);
            let group = match (k % 3, sha512) {
                (0, _) => [a, b, c],
                (1, true) => [b, c, a],
                (1, false) => [c, a, b],
                (_, true) => [c, a, b],
                (_, false) => [b, c, a],
            };
            group.map(Some)
        })
        .collect()
}

/// SHA-crypt (`$5$`/`$6$`), rounds shown unless they are the implicit 5000, as passlib does.
fn sha_crypt<D: Digest + Clone>(password: &str, salt: &str, rounds: u32) -> String {
    let rounds = rounds.clamp(1000, 999_999_999);
    let pw = password.as_bytes();
    let salt = &salt.as_bytes()[..salt.len().min(16)];
    let size = <D as Digest>::output_size();
    let b = D::new()
        .chain_update(pw)
        .chain_update(salt)
        .chain_update(pw)
        .finalize();
    let mut ctx = D::new().chain_update(pw).chain_update(salt);
    let mut left = pw.len();
    while left > size {
        ctx.update(&b);
        left -= size;
    }
    ctx.update(&b[..left]);
    let mut i = pw.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update(&b);
        } else {
            ctx.update(pw);
        }
        i >>= 1;
    }
    let a = ctx.finalize();
    let mut dp = D::new();
    for _ in 0..pw.len() {
        dp.update(pw);
    }
    let dp = dp.finalize();
    let p: Vec<u8> = dp.iter().cycle().take(pw.len()).copied().collect();
    let mut ds = D::new();
    for _ in 0..16 + usize::from(a[0]) {
        ds.update(salt);
    }
    let ds = ds.finalize();
    let s: Vec<u8> = ds.iter().cycle().take(salt.len()).copied().collect();
    let mut c = a.to_vec();
    for r in 0..rounds {
        let mut round = D::new();
        if r & 1 == 1 {
            round.update(&p);
        } else {
            round.update(&c);
        }
        if r % 3 != 0 {
            round.update(&s);
        }
        if r % 7 != 0 {
            round.update(&p);
        }
        if r & 1 == 1 {
            round.update(&c);
        } else {
            round.update(&p);
        }
        c = round.finalize().to_vec();
    }
    let (id, order, tail) = if size == 64 {
        let mut order = sha_order(21, true);
        order.push([None, None, Some(63)]);
        ("6", order, 2)
    } else {
        let mut order = sha_order(10, false);
        order.push([None, Some(31), Some(30)]);
        ("5", order, 3)
    };
    let shown_rounds = match rounds {
        5000 => String::new(),
        n => format!("rounds={n}$"),
    };
    let salt = String::from_utf8_lossy(salt);
    format!("${id}${shown_rounds}{salt}${}", encode(&c, &order, tail))
}

/// md5-crypt (`$1$`), as FreeBSD's crypt and passlib write it.
fn md5_crypt(password: &str, salt: &str) -> String {
    let pw = password.as_bytes();
    let salt = &salt.as_bytes()[..salt.len().min(8)];
    let alternate = Md5::new()
        .chain_update(pw)
        .chain_update(salt)
        .chain_update(pw)
        .finalize();
    let mut ctx = Md5::new()
        .chain_update(pw)
        .chain_update(b"$1$")
        .chain_update(salt);
    let mut left = pw.len();
    while left > 0 {
        ctx.update(&alternate[..left.min(16)]);
        left = left.saturating_sub(16);
    }
    let mut i = pw.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&pw[..1]);
        }
        i >>= 1;
    }
    let mut digest = ctx.finalize().to_vec();
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(pw);
        } else {
            c.update(&digest);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(pw);
        }
        if round & 1 == 1 {
            c.update(&digest);
        } else {
            c.update(pw);
        }
        digest = c.finalize().to_vec();
    }
    let order: Vec<[Option<usize>; 3]> =
        [[0, 6, 12], [1, 7, 13], [2, 8, 14], [3, 9, 15], [4, 10, 5]]
            .iter()
            .map(|g| g.map(Some))
            .chain([[None, None, Some(11)]])
            .collect();
    let salt = String::from_utf8_lossy(salt);
    format!("$1${salt}${}", encode(&digest, &order, 2))
}

/// bcrypt (`$2b$`), the salt given in bcrypt's own base-64 (22 characters).
fn bcrypt_hash(password: &str, salt: &str, cost: u32, ident: &str) -> Result<String, Error> {
    const BCRYPT_ALPHABET: &[u8; 64] =
        b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bits: u32 = 0;
    let mut held = 0;
    let mut raw = Vec::with_capacity(16);
    for ch in salt.bytes().take(22) {
        let Some(v) = BCRYPT_ALPHABET.iter().position(|&c| c == ch) else {
            return Err(invalid(format!(
                "password_hash: invalid bcrypt salt '{salt}'"
            )));
        };
        bits = (bits << 6) | v as u32;
        held += 6;
        if held >= 8 {
            held -= 8;
            raw.push((bits >> held) as u8);
            bits &= (1 << held) - 1;
        }
    }
    let raw: [u8; 16] = raw
        .get(..16)
        .and_then(|r| r.try_into().ok())
        .ok_or_else(|| {
            invalid(format!(
                "password_hash: a bcrypt salt has 22 characters, not '{salt}'"
            ))
        })?;
    let version = match ident {
        "2a" => bcrypt::Version::TwoA,
        "2x" => bcrypt::Version::TwoX,
        "2y" => bcrypt::Version::TwoY,
        _ => bcrypt::Version::TwoB,
    };
    bcrypt::hash_with_salt(password, cost, raw)
        .map(|parts| parts.format_for_version(version))
        .map_err(|e| invalid(format!("password_hash: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_crypt3() {
        // Vectors from Drepper's SHA-crypt specification and `openssl passwd -1`.
        assert_eq!(
            sha_crypt::<Sha512>("Hello world!", "saltstring", 5000),
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
        );
        assert_eq!(
            sha_crypt::<Sha256>("Hello world!", "saltstringsaltstring", 10000),
            "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA"
        );
        assert_eq!(
            md5_crypt("password", "saltsalt"),
            "$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/"
        );
        assert_eq!(
            bcrypt_hash("password", "abcdefghijklmnopqrstuu", 4, "2b")
                .unwrap()
                .len(),
            60
        );
        // passlib's and `openssl passwd -5`'s.
        assert_eq!(
            sha_crypt::<Sha256>("password", "abcdefgh", 5000),
            "$5$abcdefgh$ZLdkj8mkc2XVSrPVjskDAgZPGjtj1VGVaa1aUkrMTU/"
        );
        assert_eq!(random_salt(16).len(), 16);
    }
}
