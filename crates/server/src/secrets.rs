//! The server's secret key, which seals registry passwords in the store (ChaCha20-Poly1305,
//! a random nonce per value, stored before the ciphertext). The key comes from
//! `OSPREY_SECRET_KEY` or a file (`--secret-key-file`); without either, a first start writes a
//! new one to `DATA/secret-key` (mode 0600). Servers sharing a database must share the key.

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::error::{ServerError, ServerResult};

/// The environment variable holding the key (64 hex digits).
pub const KEY_ENV: &str = "OSPREY_SECRET_KEY";
/// Where a first start keeps a generated key.
pub const KEY_FILE: &str = "secret-key";

const NONCE_LEN: usize = 12;
/// Whether two secrets (tokens) are equal, in time that does not depend on where they differ:
/// their SHA-256 digests are compared byte by byte without stopping early.
pub fn same_secret(a: &str, b: &str) -> bool {
    use sha2::Digest as _;
    let (x, y) = (
        sha2::Sha256::digest(a.as_bytes()),
        sha2::Sha256::digest(b.as_bytes()),
    );
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

/// The prefix of a text secret sealed by [`SecretKey::seal_text`].
pub const SEALED_TEXT: &str = "sealed:";

/// A 256-bit key; never printed.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

impl SecretKey {
    /// A key from 64 hex digits; `what` names where the text came from.
    pub fn parse(text: &str, what: &str) -> ServerResult<SecretKey> {
        let bytes = hex::decode(text.trim()).map_err(|_| {
            ServerError::Secret(format!("{what}: expected 64 hex digits (a 256-bit key)"))
        })?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            ServerError::Secret(format!("{what}: expected 64 hex digits (a 256-bit key)"))
        })?;
        Ok(SecretKey(key))
    }

    /// The key from the environment, else `file`, else `DATA/secret-key` (created when absent).
    pub fn load(file: Option<&Path>, data_dir: &Path) -> ServerResult<SecretKey> {
        if let Ok(text) = std::env::var(KEY_ENV) {
            return SecretKey::parse(&text, KEY_ENV);
        }
        let path = match file {
            Some(f) => f.to_path_buf(),
            None => {
                let p = data_dir.join(KEY_FILE);
                if !p.exists() {
                    let mut key = [0u8; 32];
                    getrandom::fill(&mut key).map_err(|e| {
                        ServerError::Secret(format!("generating a secret key: {e}"))
                    })?;
                    crate::write_secret(&p, &hex::encode(key))
                        .map_err(ServerError::io(p.display().to_string()))?;
                    tracing::info!(path = %p.display(), "wrote a new secret key");
                }
                p
            }
        };
        let text =
            std::fs::read_to_string(&path).map_err(ServerError::io(path.display().to_string()))?;
        SecretKey::parse(&text, &path.display().to_string())
    }

    /// A fresh random key (a server without a configured key: what it seals lives as long as
    /// the process).
    pub fn random() -> SecretKey {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the operating system's random generator failed");
        SecretKey(key)
    }

    /// A key for one purpose, derived from this one (HMAC-SHA256 of the purpose's name), so a
    /// value sealed for one purpose never opens as another's.
    pub fn derive(&self, purpose: &str) -> SecretKey {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0)
            .expect("HMAC takes a key of any length");
        mac.update(purpose.as_bytes());
        SecretKey(mac.finalize().into_bytes().into())
    }

    /// HMAC-SHA256 of `message` under this key.
    pub fn mac(&self, message: &[u8]) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0)
            .expect("HMAC takes a key of any length");
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    /// Seals a secret: nonce followed by the ciphertext and tag.
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.0));
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the operating system's random generator failed");
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), plain)
            .expect("ChaCha20-Poly1305 encrypts any message of this size");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        out
    }

    /// Checks that this is the key the store's secrets are sealed with: the first server of a
    /// database seals a known text into it, every later one must open it. A server with
    /// another key would fail every registry login, or seal passwords no other server opens.
    pub async fn check(&self, store: &osprey_store::Store) -> ServerResult<()> {
        const CHECK: &[u8] = b"osprey secret key check";
        let sealed = store
            .state_or_insert("secrets/key-check", &self.seal(CHECK))
            .await
            .map_err(|e| ServerError::Secret(format!("the database: {e}")))?;
        match self.open(&sealed) {
            Ok(plain) if plain == CHECK => Ok(()),
            _ => Err(ServerError::Secret(
                "not the key this database's secrets are sealed with: every server of a database needs the same key (OSPREY_SECRET_KEY or --secret-key-file)".into(),
            )),
        }
    }

    /// A text secret sealed for a text column: `sealed:` and the hex of [`seal`](Self::seal).
    pub fn seal_text(&self, plain: &str) -> String {
        format!("{SEALED_TEXT}{}", hex::encode(self.seal(plain.as_bytes())))
    }

    /// Opens what [`seal_text`](Self::seal_text) made; a secret stored before secrets were
    /// sealed (no prefix) is returned as it is.
    pub fn open_text(&self, stored: &str) -> ServerResult<String> {
        let Some(sealed) = stored.strip_prefix(SEALED_TEXT) else {
            return Ok(stored.to_string());
        };
        let bytes = hex::decode(sealed)
            .map_err(|_| ServerError::Secret("a sealed secret is not hex".into()))?;
        String::from_utf8(self.open(&bytes)?)
            .map_err(|_| ServerError::Secret("a sealed secret is not text".into()))
    }

    /// Opens what [`seal`](Self::seal) made with the same key.
    pub fn open(&self, sealed: &[u8]) -> ServerResult<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return Err(ServerError::Secret("a sealed secret is too short".into()));
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        ChaCha20Poly1305::new(Key::from_slice(&self.0))
            .decrypt(Nonce::from_slice(nonce), body)
            .map_err(|_| {
                ServerError::Secret(
                    "a sealed secret does not open with this server's key (was the key changed?)"
                        .into(),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_secrets_seal_and_open_and_old_ones_still_read() {
        let key = SecretKey::random();
        let sealed = key.seal_text("webhook-key-0123456789");
        assert!(sealed.starts_with(SEALED_TEXT) && !sealed.contains("webhook-key"));
        assert_eq!(key.open_text(&sealed).unwrap(), "webhook-key-0123456789");
        assert_eq!(key.open_text("stored-in-clear").unwrap(), "stored-in-clear");
        assert!(SecretKey::random().open_text(&sealed).is_err());
        assert!(key.open_text("sealed:zz").is_err());
    }

    #[test]
    fn sealed_secrets_open_with_their_key_only() {
        let key = SecretKey::parse(&"11".repeat(32), "test").unwrap();
        let sealed = key.seal(b"hunter2");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_ne!(key.seal(b"hunter2"), sealed, "a fresh nonce each time");
        assert_eq!(key.open(&sealed).unwrap(), b"hunter2");
        let other = SecretKey::parse(&"22".repeat(32), "test").unwrap();
        let refused = other.open(&sealed).unwrap_err();
        assert!(matches!(&refused, ServerError::Secret(m) if m.contains("does not open")));
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(key.open(&tampered).is_err());
        assert!(key.open(b"short").is_err());
    }

    #[test]
    fn derived_keys_differ_per_purpose_and_are_stable() {
        let key = SecretKey::parse(&"11".repeat(32), "test").unwrap();
        let a = key.derive("console session");
        assert_eq!(a.0, key.derive("console session").0);
        assert_ne!(a.0, key.derive("console csrf").0);
        assert_ne!(a.0, key.0);
        let sealed = a.seal(b"x");
        assert!(
            key.open(&sealed).is_err(),
            "the parent key does not open it"
        );
        assert_ne!(a.mac(b"m"), key.derive("console csrf").mac(b"m"));
        assert_ne!(SecretKey::random().0, SecretKey::random().0);
    }

    #[test]
    fn keys_are_64_hex_digits() {
        assert!(
            SecretKey::parse("abc", "OSPREY_SECRET_KEY")
                .unwrap_err()
                .to_string()
                .starts_with("OSPREY_SECRET_KEY: expected 64 hex digits")
        );
        assert!(SecretKey::parse(&"zz".repeat(32), "f").is_err());
        assert_eq!(format!("{:?}", SecretKey([0; 32])), "SecretKey(***)");
    }

    #[test]
    fn a_first_start_writes_a_private_key_file_and_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        // (OSPREY_SECRET_KEY is not set where tests run.)
        let a = SecretKey::load(None, dir.path()).unwrap();
        let b = SecretKey::load(None, dir.path()).unwrap();
        assert_eq!(a.0, b.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join("bad"), "nope").unwrap();
        let err = SecretKey::load(Some(&dir.path().join("bad")), dir.path()).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("bad: expected 64 hex digits (a 256-bit key)"),
            "{err}"
        );
    }
}
