//! Known vectors from the real ansible-vault (fixtures/README says how they were made).

use super::*;

const PASSWORD: &[u8] = b"ansible-fixture-pw";
const PLAIN: &str = include_str!("fixtures/plain-vars.yml");

fn keyring(label: &str, password: &[u8]) -> Keyring {
    Keyring::new(vec![Secret::new(label, password.to_vec())])
}

#[test]
fn opens_what_ansible_vault_wrote_in_both_formats() {
    let ring = keyring(DEFAULT_LABEL, PASSWORD);
    for text in [
        include_str!("fixtures/v11.vault"),
        include_str!("fixtures/v12.vault"),
        include_str!("fixtures/salted12.vault"),
    ] {
        assert_eq!(ring.decrypt(text).unwrap(), PLAIN.as_bytes());
    }
    assert_eq!(
        ring.decrypt(include_str!("fixtures/s16.vault")).unwrap(),
        b"exactly sixteen!"
    );
    assert_eq!(
        ring.decrypt(include_str!("fixtures/empty.vault")).unwrap(),
        b""
    );
}

#[test]
fn opens_an_inline_value_with_its_indentation() {
    let yaml = include_str!("fixtures/inline.yml");
    let block: String = yaml
        .lines()
        .skip(1)
        .map(|l| format!("{}\n", l.trim()))
        .collect();
    assert_eq!(
        keyring("x", PASSWORD).decrypt(&block).unwrap(),
        b"inline value"
    );
}

#[test]
fn writes_the_bytes_ansible_vault_writes_for_the_same_salt() {
    let secret = Secret::new("prod", PASSWORD.to_vec());
    assert_eq!(
        encrypt_with_salt(PLAIN.as_bytes(), &secret, b"kilnfixturesalt"),
        include_str!("fixtures/salted12.vault")
    );
}

#[test]
fn a_default_label_writes_format_1_1() {
    let secret = Secret::new(DEFAULT_LABEL, b"pw".to_vec());
    let text = encrypt(b"x", &secret).unwrap();
    assert!(text.starts_with("$ANSIBLE_VAULT;1.1;AES256\n"));
    assert!(text.lines().skip(1).all(|l| l.len() <= 80));
    assert_eq!(keyring("other", b"pw").decrypt(&text).unwrap(), b"x");
}

#[test]
fn a_wrong_or_missing_password_opens_nothing() {
    let text = include_str!("fixtures/v12.vault");
    assert_eq!(
        keyring("prod", b"wrong").decrypt(text),
        Err(VaultError::NoMatchingSecret)
    );
    assert_eq!(Keyring::default().decrypt(text), Err(VaultError::NoSecrets));
}

#[test]
fn the_labelled_password_is_tried_first_and_others_after_it() {
    let text = include_str!("fixtures/v12.vault");
    let ring = Keyring::new(vec![
        Secret::new("dev", b"wrong".to_vec()),
        Secret::new("other", PASSWORD.to_vec()),
    ]);
    assert_eq!(ring.decrypt(text).unwrap(), PLAIN.as_bytes());
}

#[test]
fn a_tampered_vault_fails_the_hmac() {
    let text = include_str!("fixtures/v11.vault");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // The body's last two digits encode a ciphertext hex digit: swap it for another one.
    let last = lines.len() - 1;
    let replacement = if lines[last].ends_with("30") {
        "31"
    } else {
        "30"
    };
    let cut = lines[last].len() - 2;
    lines[last].replace_range(cut.., replacement);
    let tampered = lines.join("\n");
    assert_eq!(
        keyring(DEFAULT_LABEL, PASSWORD).decrypt(&tampered),
        Err(VaultError::NoMatchingSecret)
    );
}

#[test]
fn malformed_envelopes_are_format_errors() {
    let ring = keyring(DEFAULT_LABEL, PASSWORD);
    assert_eq!(ring.decrypt("plain"), Err(VaultError::NotEncrypted));
    assert!(matches!(
        ring.decrypt("$ANSIBLE_VAULT;1.1;AES256\nzz\n"),
        Err(VaultError::Format(_))
    ));
    assert!(matches!(
        ring.decrypt("$ANSIBLE_VAULT;1.1;AES128\n00\n"),
        Err(VaultError::UnknownCipher(_))
    ));
}

#[test]
fn the_debug_form_of_a_secret_hides_the_password() {
    let shown = format!("{:?}", keyring("prod", b"hunter2"));
    assert!(!shown.contains("hunter2"), "{shown}");
}
