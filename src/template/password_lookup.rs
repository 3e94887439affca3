//! `lookup('password', 'path length=20 chars=ascii_letters,digits encrypt=sha512_crypt')` as
//! ansible-core's plugin: a random password, kept in a controller file so the next run gets
//! the same one (`/dev/null`: a new one every time, nothing kept). The file holds the
//! password, and with `encrypt` its salt (`pw salt=... ident=...`); it is created 0600 in a
//! 0700 directory. Relative paths are relative to the playbook's directory.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use minijinja::value::Kwargs;
use minijinja::{Error, State, Value};

use super::lookups::fail;
use super::password::{crypt, random_salt, salt_size};

/// Hosts template at once; one password file is read and written by one of them at a time.
static FILES: Mutex<()> = Mutex::new(());

const DEFAULT_CHARS: &[&str] = &["ascii_letters", "digits", ".,:-_"];

/// Python's `string` module constants, which `chars` may name.
fn char_class(name: &str) -> Option<String> {
    const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
    const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const DIGITS: &str = "0123456789";
    const PUNCTUATION: &str = r##"!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~"##;
    const WHITESPACE: &str = " \t\n\r\x0b\x0c";
    Some(match name {
        "ascii_letters" => format!("{LOWER}{UPPER}"),
        "ascii_lowercase" => LOWER.into(),
        "ascii_uppercase" => UPPER.into(),
        "digits" => DIGITS.into(),
        "hexdigits" => "0123456789abcdefABCDEF".into(),
        "octdigits" => "01234567".into(),
        "punctuation" => PUNCTUATION.into(),
        "whitespace" => WHITESPACE.into(),
        "printable" => format!("{DIGITS}{LOWER}{UPPER}{PUNCTUATION}{WHITESPACE}"),
        _ => return None,
    })
}

#[derive(Debug, PartialEq)]
struct Params {
    path: String,
    length: usize,
    chars: Vec<String>,
    encrypt: Option<String>,
    ident: Option<String>,
    seed: Option<String>,
}

/// `chars` as a string: comma-separated, `,,` standing for a comma.
fn split_chars(text: &str) -> Vec<String> {
    let mut chars = Vec::new();
    if text.contains(",,") {
        chars.push(",".to_string());
    }
    chars.extend(
        text.replace(",,", ",")
            .split(',')
            .filter(|c| !c.is_empty())
            .map(String::from),
    );
    chars
}

fn parse(term: &str, kwargs: &Kwargs) -> Result<Params, Error> {
    let (path, rest) = term.split_once(' ').unwrap_or((term, ""));
    let mut params = Params {
        path: path.to_string(),
        length: 20,
        chars: DEFAULT_CHARS.iter().map(|c| c.to_string()).collect(),
        encrypt: None,
        ident: None,
        seed: None,
    };
    if let Some(length) = kwargs.get::<Option<Value>>("length")? {
        params.length = length_of(&length.to_string())?;
    }
    if let Some(chars) = kwargs.get::<Option<Value>>("chars")? {
        params.chars = match chars.as_str() {
            Some(text) => split_chars(text),
            None => chars.try_iter()?.map(|c| c.to_string()).collect(),
        };
    }
    for (name, slot) in [
        ("encrypt", &mut params.encrypt),
        ("ident", &mut params.ident),
        ("seed", &mut params.seed),
    ] {
        if let Some(v) = kwargs.get::<Option<Value>>(name)? {
            *slot = (!v.is_none()).then(|| v.to_string());
        }
    }
    let mut unknown = Vec::new();
    for word in crate::shell::split_words(rest) {
        let Some((name, value)) = word.split_once('=') else {
            unknown.push(word);
            continue;
        };
        let value = crate::shell::unquote(value);
        match name {
            "length" => params.length = length_of(&value)?,
            "chars" => params.chars = split_chars(&value),
            "encrypt" => params.encrypt = Some(value),
            "ident" => params.ident = Some(value),
            "seed" => params.seed = Some(value),
            _ => unknown.push(word),
        }
    }
    if !unknown.is_empty() {
        return Err(fail(format!(
            "Unrecognized value(s) for password lookup: {}",
            unknown.join(", ")
        )));
    }
    Ok(params)
}

fn length_of(text: &str) -> Result<usize, Error> {
    text.trim().parse().map_err(|_| {
        fail(format!(
            "lookup('password'): length must be an integer, got '{text}'"
        ))
    })
}

/// The stored content's parts: password, salt, ident (Ansible's `_parse_content`).
fn parse_content(content: &str) -> (String, Option<String>, Option<String>) {
    let Some(at) = content.rfind(" salt=") else {
        return (content.to_string(), None, None);
    };
    let password = content[..at].to_string();
    let salt = &content[at + " salt=".len()..];
    match salt.rfind(" ident=") {
        Some(i) => (
            password,
            Some(salt[..i].to_string()),
            Some(salt[i + " ident=".len()..].to_string()),
        ),
        None => (password, Some(salt.to_string()), None),
    }
}

fn format_content(password: &str, salt: Option<&str>, ident: Option<&str>) -> String {
    match (salt, ident) {
        (Some(salt), Some(ident)) => format!("{password} salt={salt} ident={ident}"),
        (Some(salt), None) => format!("{password} salt={salt}"),
        _ => password.to_string(),
    }
}

/// `length` characters drawn from `chars` (seeded: the same every time).
fn random_password(length: usize, chars: &[char], seed: Option<&str>) -> Result<String, Error> {
    if chars.is_empty() {
        return Err(fail("lookup('password'): chars names no characters".into()));
    }
    let seed = seed.map(Value::from);
    let pool = Value::from(chars.iter().map(|c| c.to_string()).collect::<Vec<_>>());
    let mut password = String::with_capacity(length);
    for n in 0..length {
        // Each pick seeded by the seed and its position, so a seeded password repeats.
        let seed = seed.as_ref().map(|s| Value::from(format!("{s}/{n}")));
        let kwargs = Kwargs::from_iter(seed.map(|s| ("seed", s)));
        password.push_str(&super::random::random(pool.clone(), kwargs)?.to_string());
    }
    Ok(password)
}

fn read_stored(path: &Path) -> Result<Option<String>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(
            String::from_utf8_lossy(&bytes)
                .trim_end_matches(['\r', '\n'])
                .to_string(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(fail(format!("lookup('password'): {}: {e}", path.display()))),
    }
}

fn write_stored(path: &Path, content: &str) -> Result<(), Error> {
    let failed = |e: std::io::Error| fail(format!("lookup('password'): {}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(failed)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(failed)?;
    file.write_all(format!("{content}\n").as_bytes())
        .map_err(failed)
}

/// One term's password.
fn password(state: &State, term: &str, kwargs: &Kwargs) -> Result<Value, Error> {
    let params = parse(term, kwargs)?;
    let chars: Vec<char> = params
        .chars
        .iter()
        .flat_map(|c| {
            char_class(c)
                .unwrap_or_else(|| c.clone())
                .chars()
                .collect::<Vec<_>>()
        })
        .collect();
    let path = match Path::new(&params.path) {
        p if p.is_absolute() => p.to_path_buf(),
        p => state
            .lookup("playbook_dir")
            .map(|d| PathBuf::from(d.to_string()).join(p))
            .unwrap_or_else(|| p.to_path_buf()),
    };
    let scratch = path == Path::new("/dev/null");
    let _guard = FILES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let stored = match scratch {
        true => None,
        false => read_stored(&path)?,
    };
    let mut changed = stored.is_none();
    let (plaintext, mut salt, mut ident) = match stored {
        Some(content) => parse_content(&content),
        None => (
            random_password(params.length, &chars, params.seed.as_deref())?,
            None,
            None,
        ),
    };
    if let Some(scheme) = &params.encrypt {
        let size = salt_size(scheme).ok_or_else(|| {
            fail(format!(
                "lookup('password'): {scheme} is not in the list of supported passlib algorithms: md5, blowfish, sha256, sha512"
            ))
        })?;
        if salt.is_none() {
            salt = Some(random_salt(size));
            changed = true;
        }
    }
    match (&ident, &params.ident) {
        (None, wanted) => ident = wanted.clone(),
        (Some(stored), Some(wanted)) if stored != wanted => {
            return Err(fail(format!(
                "The ident parameter provided ({wanted}) does not match the stored one ({stored})."
            )))
        }
        _ => {}
    }
    if let (Some(scheme), None) = (&params.encrypt, &ident) {
        if matches!(scheme.as_str(), "blowfish" | "bcrypt") {
            ident = Some("2b".into());
            changed = true;
        }
    }
    if changed && !scratch {
        let salt = params.encrypt.as_ref().and(salt.as_deref());
        write_stored(&path, &format_content(&plaintext, salt, ident.as_deref()))?;
    }
    match &params.encrypt {
        Some(scheme) => Ok(Value::from(crypt(
            &plaintext,
            scheme,
            salt,
            None,
            None,
            ident.as_deref(),
        )?)),
        None => Ok(Value::from(plaintext)),
    }
}

pub fn run(state: &State, terms: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    terms
        .iter()
        .map(|term| password(state, &term.to_string(), kwargs))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_read_as_ansibles_parameters() {
        let kwargs = Kwargs::from_iter(std::iter::empty::<(&str, Value)>());
        let params = parse("creds/db length=8 chars=digits,,,ascii_lowercase", &kwargs).unwrap();
        assert_eq!(params.path, "creds/db");
        assert_eq!(params.length, 8);
        assert_eq!(params.chars, [",", "digits", "ascii_lowercase"]);
        assert!(parse("x bogus=1", &kwargs)
            .unwrap_err()
            .to_string()
            .contains("Unrecognized value(s) for password lookup: bogus=1"));
    }

    #[test]
    fn stored_content_keeps_salt_and_ident() {
        assert_eq!(
            parse_content("pw salt=abc ident=2b"),
            ("pw".into(), Some("abc".into()), Some("2b".into()))
        );
        assert_eq!(parse_content("p w"), ("p w".into(), None, None));
        assert_eq!(format_content("pw", Some("abc"), None), "pw salt=abc");
    }

    #[test]
    fn a_seeded_password_repeats_and_uses_only_its_chars() {
        let chars: Vec<char> = "ab".chars().collect();
        let one = random_password(30, &chars, Some("s")).unwrap();
        assert_eq!(one, random_password(30, &chars, Some("s")).unwrap());
        assert_eq!(one.len(), 30);
        assert!(one.chars().all(|c| c == 'a' || c == 'b'));
    }
}
