//! Secrets as files, in the layout Kubernetes uses when it mounts a Secret as a
//! volume: the key `K` of Secret `S` is the file `DIR/S/K`.

use std::path::{Path, PathBuf};

use crate::pipeline::{SecretKeyRef, ShardSpec};

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("reading secret file {path} failed: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("secret file {path} is empty")]
    Empty { path: PathBuf },
}

/// The folder Secrets are mounted under.
#[derive(Debug, Clone)]
pub struct SecretsDir {
    root: PathBuf,
}

impl SecretsDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The file of key `key` of Secret `name`.
    pub fn path(&self, name: &str, key: &str) -> PathBuf {
        self.root.join(name).join(key)
    }

    /// The value of a `{name, key}` reference, without its trailing newline.
    pub fn read(&self, reference: &SecretKeyRef) -> Result<String, SecretError> {
        self.read_key(&reference.name, &reference.key)
    }

    /// The value of key `key` of Secret `name`, without its trailing newline; a
    /// missing or empty file is an error that names the file.
    pub fn read_key(&self, name: &str, key: &str) -> Result<String, SecretError> {
        read_nonempty(&self.path(name, key))
    }

    /// The path of a `{name, key}` reference to a file that a client library
    /// opens itself (a certificate, a key), checked here to exist and to be
    /// non-empty so that a missing mount fails at startup by its name, not at
    /// the first connection.
    pub fn file(&self, reference: &SecretKeyRef) -> Result<PathBuf, SecretError> {
        let path = self.path(&reference.name, &reference.key);
        read_nonempty(&path)?;
        Ok(path)
    }

    /// The connection string of `shard`: its URL, with `sslrootcert` set to
    /// the file of its `caSecretRef` when it has one. Appended last, the
    /// reference wins over a `sslrootcert` the URL carries already (the
    /// driver takes the last value of a repeated parameter).
    pub fn shard_url(&self, shard: &ShardSpec) -> Result<String, SecretError> {
        let url = self.read(&shard.database_url_secret_ref)?;
        match &shard.ca_secret_ref {
            None => Ok(url),
            Some(ca) => Ok(with_root_cert(&url, &self.file(ca)?)),
        }
    }

    /// Whether key `key` of Secret `name` exists.
    pub fn has_key(&self, name: &str, key: &str) -> bool {
        self.path(name, key).is_file()
    }
}

/// `url` with `sslrootcert=<path>` added to its query.
fn with_root_cert(url: &str, path: &Path) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{separator}sslrootcert={}",
        percent_encode(&path.to_string_lossy())
    )
}

/// Percent-encodes all but unreserved characters and `/`, so that a path with
/// `&`, `#` or spaces stays one query value.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn read_nonempty(path: &Path) -> Result<String, SecretError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretError::Read {
        path: path.to_owned(),
        source,
    })?;
    let value = text.trim_end_matches(['\n', '\r']);
    if value.trim().is_empty() {
        return Err(SecretError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(name: &str, key: &str, value: &str) -> (tempdir::Dir, SecretsDir) {
        let dir = tempdir::Dir::new();
        std::fs::create_dir_all(dir.0.join(name)).unwrap();
        std::fs::write(dir.0.join(name).join(key), value).unwrap();
        let secrets = SecretsDir::new(&dir.0);
        (dir, secrets)
    }

    /// A throwaway folder, removed on drop.
    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                let path =
                    std::env::temp_dir().join(format!("hookline-secrets-{}", uuid::Uuid::new_v4()));
                std::fs::create_dir_all(&path).unwrap();
                Self(path)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn value_is_read_without_trailing_newline() {
        let (_dir, secrets) = dir_with("pg-shard-a", "url", "postgres://x/y\n");
        let reference = SecretKeyRef {
            name: "pg-shard-a".into(),
            key: "url".into(),
        };
        assert_eq!(secrets.read(&reference).unwrap(), "postgres://x/y");
    }

    fn shard(ca: Option<SecretKeyRef>) -> ShardSpec {
        ShardSpec {
            name: "a".into(),
            database_url_secret_ref: SecretKeyRef {
                name: "pg-shard-a".into(),
                key: "url".into(),
            },
            ca_secret_ref: ca,
            pool_size: None,
            max_connections: None,
        }
    }

    #[test]
    fn shard_url_without_ca_is_the_url() {
        let (_dir, secrets) = dir_with("pg-shard-a", "url", "postgres://h/db?sslmode=require\n");
        assert_eq!(
            secrets.shard_url(&shard(None)).unwrap(),
            "postgres://h/db?sslmode=require"
        );
    }

    #[test]
    fn shard_ca_becomes_the_urls_sslrootcert() {
        let (dir, secrets) = dir_with("pg-shard-a", "url", "postgres://h/db?sslmode=verify-full");
        std::fs::create_dir_all(dir.0.join("pg ca")).unwrap();
        std::fs::write(dir.0.join("pg ca").join("ca.crt"), "PEM").unwrap();
        let ca = SecretKeyRef {
            name: "pg ca".into(),
            key: "ca.crt".into(),
        };
        let path = percent_encode(&dir.0.join("pg ca").join("ca.crt").to_string_lossy());
        assert!(path.contains("pg%20ca/ca.crt"), "{path}");
        assert_eq!(
            secrets.shard_url(&shard(Some(ca))).unwrap(),
            format!("postgres://h/db?sslmode=verify-full&sslrootcert={path}")
        );
        let (_dir, secrets) = dir_with("pg-shard-a", "url", "postgres://h/db");
        let missing = SecretKeyRef {
            name: "pg-ca".into(),
            key: "ca.crt".into(),
        };
        let err = secrets.shard_url(&shard(Some(missing))).unwrap_err();
        assert!(err.to_string().contains("pg-ca/ca.crt"), "{err}");
    }

    #[test]
    fn missing_file_names_the_file() {
        let (_dir, secrets) = dir_with("s", "k", "v");
        let err = secrets.read_key("s", "other").unwrap_err();
        assert!(err.to_string().contains("s/other"), "{err}");
    }

    #[test]
    fn empty_file_is_refused_by_name() {
        let (_dir, secrets) = dir_with("s", "k", "\n");
        let err = secrets.read_key("s", "k").unwrap_err();
        assert!(matches!(err, SecretError::Empty { .. }));
        assert!(err.to_string().ends_with("s/k is empty"), "{err}");
    }
}
