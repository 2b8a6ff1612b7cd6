//! Secrets as files, in the layout Kubernetes uses when it mounts a Secret as a
//! volume: the key `K` of Secret `S` is the file `DIR/S/K`.

use std::path::{Path, PathBuf};

use crate::pipeline::SecretKeyRef;

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

    /// Whether key `key` of Secret `name` exists.
    pub fn has_key(&self, name: &str, key: &str) -> bool {
        self.path(name, key).is_file()
    }
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
