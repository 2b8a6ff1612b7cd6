//! The signing secrets in use, and their reload from the mounted files.
//!
//! A provider's secret is rotated by adding the new one as a second line of
//! the Secret, switching the provider over, then removing the old line.
//! Kubernetes updates a mounted Secret in place (it writes a new directory and
//! swaps the `..data` symlink to it, atomically), but a process that read the
//! files once at startup keeps the old keys until its pods are restarted. So
//! the files are read again every `--secrets-reload-interval`, and the keys
//! swapped whole when they changed.
//!
//! A request takes the keys once ([`Signing::keys`], [`Signing::source`]) and
//! checks its signature against that one set, even if a reload lands between
//! reading its headers and its body. A file that cannot be read, is empty or
//! holds no usable secret keeps the keys in use, with an error in the log:
//! a half-written Secret must never lock every provider out.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use hookline_contract::pipeline::SourceSpec;
use hookline_contract::secrets::SecretsDir;
use tokio_util::sync::CancellationToken;

use crate::auth::Keys;
use crate::config::{self, STANDARD_WEBHOOKS_KEY, STRIPE_KEY, Source};

/// The keys every request verifies against, swapped whole on reload.
#[derive(Debug, Default)]
pub struct Signing {
    /// The default source's (`POST /webhooks/{type}`).
    default: RwLock<Arc<Keys>>,
    /// The named sources' by name; the names are the manifest's and never
    /// change, only their secrets do.
    sources: RwLock<HashMap<String, Arc<Source>>>,
}

impl Signing {
    pub fn new(keys: Keys, sources: HashMap<String, Arc<Source>>) -> Self {
        Self {
            default: RwLock::new(Arc::new(keys)),
            sources: RwLock::new(sources),
        }
    }

    /// The default source's keys as they are now.
    pub fn keys(&self) -> Arc<Keys> {
        // A poisoned lock still holds a whole `Arc`: a writer only swaps it.
        self.default
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The named source `name` as it is now.
    pub fn source(&self, name: &str) -> Option<Arc<Source>> {
        self.sources
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Whether the manifest has a source `name`.
    pub fn has_source(&self, name: &str) -> bool {
        self.sources
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(name)
    }

    /// Serves `sources` instead of the named sources it had.
    pub fn replace_sources(&self, sources: HashMap<String, Arc<Source>>) {
        *self.sources.write().unwrap_or_else(PoisonError::into_inner) = sources;
    }

    fn replace_keys(&self, keys: Keys) {
        *self.default.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
    }

    fn replace_source(&self, name: &str, source: Source) {
        self.sources
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), Arc::new(source));
    }
}

/// What to read again, and how often.
#[derive(Debug, Clone)]
pub struct Reload {
    pub secrets: SecretsDir,
    /// The default source's signing Secret.
    pub signing_secret: String,
    pub sources: Vec<SourceSpec>,
    pub interval: Duration,
}

impl Reload {
    /// Reads the files every interval until `shutdown`, swapping in the keys
    /// of each file set that changed since the last look.
    pub async fn run(self, signing: Arc<Signing>, shutdown: CancellationToken) {
        let mut seen = Seen::default();
        // The first look reads the files again: a Secret rotated between
        // startup's read and this task's start would otherwise count as seen.
        self.look(&signing, &mut seen);
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                _ = tick.tick() => self.look(&signing, &mut seen),
            }
        }
    }

    /// One look at every file, replacing the keys of what changed.
    fn look(&self, signing: &Signing, seen: &mut Seen) {
        let name = &self.signing_secret;
        let files = [
            self.secrets.path(name, STANDARD_WEBHOOKS_KEY),
            self.secrets.path(name, STRIPE_KEY),
        ];
        if seen.changed("", &files) {
            match config::load_keys(&self.secrets, name) {
                Ok(keys) => {
                    tracing::info!(secret = %name, "signing secrets reloaded");
                    signing.replace_keys(keys);
                }
                Err(error) => tracing::error!(
                    secret = %name, error = %error,
                    "the signing secrets changed but cannot be used; the previous ones stay in use"
                ),
            }
        }
        for spec in &self.sources {
            let reference = &spec.secret_ref;
            let file = self.secrets.path(&reference.name, &reference.key);
            if !seen.changed(&spec.name, &[file]) {
                continue;
            }
            match config::load_source(&self.secrets, spec) {
                Ok(source) => {
                    tracing::info!(source = %spec.name, "source secrets reloaded");
                    signing.replace_source(&spec.name, source);
                }
                Err(error) => tracing::error!(
                    source = %spec.name, error = %error,
                    "the source's secrets changed but cannot be used; the previous ones stay in use"
                ),
            }
        }
    }
}

/// A fingerprint of what each source's files held at the last look (the
/// default source under ""), so that a file is parsed only when it changed.
#[derive(Debug, Default)]
struct Seen(HashMap<String, u64>);

impl Seen {
    /// Whether `files` hold something else than at the last look of `source`;
    /// records what they hold now. A missing or unreadable file is part of
    /// the fingerprint, so that its error is logged once, not every look.
    fn changed(&mut self, source: &str, files: &[PathBuf]) -> bool {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        for file in files {
            match std::fs::read(file) {
                Ok(bytes) => bytes.hash(&mut hasher),
                Err(error) => error.kind().hash(&mut hasher),
            }
        }
        let now = hasher.finish();
        self.0.insert(source.to_owned(), now) != Some(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_counts_as_changed_only_when_its_content_does() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "a").unwrap();
        let mut seen = Seen::default();

        assert!(seen.changed("s", std::slice::from_ref(&file)), "first look");
        assert!(!seen.changed("s", std::slice::from_ref(&file)));
        std::fs::write(&file, "b").unwrap();
        assert!(seen.changed("s", std::slice::from_ref(&file)));
        std::fs::remove_file(&file).unwrap();
        assert!(seen.changed("s", std::slice::from_ref(&file)));
        assert!(
            !seen.changed("s", std::slice::from_ref(&file)),
            "logged once"
        );
    }
}
