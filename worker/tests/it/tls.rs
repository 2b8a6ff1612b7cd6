//! TLS to the shards, for real: this machine's PostgreSQL serves TLS with
//! Debian's snakeoil certificate for `localhost` (`scripts/stack up` turns
//! `ssl` on), and the worker connects as it connects to a managed database
//! with `sslmode=verify-full`, the shard's `caSecretRef` as the root.

use hookline_contract::pipeline::{SecretKeyRef, ShardSpec};
use hookline_contract::secrets::SecretsDir;
use hookline_testkit::tls::Certificates;
use hookline_worker::store::Pools;

/// The certificate Debian's `ssl-cert` package makes, which PostgreSQL serves.
const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

/// The stack's administrative URL with the host that the snakeoil certificate
/// names.
fn localhost_url() -> String {
    let url = std::env::var("HOOKLINE_PG_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://hookline:hookline@127.0.0.1:5432/postgres".to_owned());
    assert!(
        url.contains("@127.0.0.1:"),
        "expected a 127.0.0.1 URL: {url}"
    );
    url.replace("@127.0.0.1:", "@localhost:")
}

/// A shard whose URL asks for `verify-full` and whose `caSecretRef` holds
/// `root`, in a secrets folder laid out as Kubernetes mounts Secrets.
fn shard_with_root(root: &std::path::Path) -> (tempfile::TempDir, SecretsDir, ShardSpec) {
    let dir = tempfile::tempdir().unwrap();
    for (name, key, value) in [
        (
            "pg-shard-a",
            "url",
            format!("{}?sslmode=verify-full", localhost_url()),
        ),
        ("pg-ca", "ca.crt", std::fs::read_to_string(root).unwrap()),
    ] {
        std::fs::create_dir_all(dir.path().join(name)).unwrap();
        std::fs::write(dir.path().join(name).join(key), value).unwrap();
    }
    let key = |name: &str, key: &str| SecretKeyRef {
        name: name.into(),
        key: key.into(),
    };
    let shard = ShardSpec {
        name: "a".into(),
        database_url_secret_ref: key("pg-shard-a", "url"),
        ca_secret_ref: Some(key("pg-ca", "ca.crt")),
        pool_size: None,
        max_connections: None,
    };
    let secrets = SecretsDir::new(dir.path());
    (dir, secrets, shard)
}

async fn connect(url: String) -> Result<bool, sqlx::Error> {
    let pools = Pools::connect_lazy(&[("a".to_owned(), url)], &[1])?;
    let (_, pool) = pools.iter().next().unwrap();
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(pool)
        .await
}

#[tokio::test]
async fn verify_full_with_the_shards_ca_secret_connects_over_tls() {
    let (_dir, secrets, shard) = shard_with_root(std::path::Path::new(SNAKEOIL));
    let url = secrets.shard_url(&shard).unwrap();
    assert!(url.contains("sslrootcert="), "{url}");
    let ssl = connect(url).await.unwrap_or_else(|e| {
        panic!("verify-full to localhost with {SNAKEOIL} failed (is ssl on? scripts/stack up turns it on): {e}")
    });
    assert!(ssl, "the connection is not encrypted");
}

#[tokio::test]
async fn verify_full_with_the_root_in_the_url_connects_over_tls() {
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={SNAKEOIL}",
        localhost_url()
    );
    assert!(connect(url).await.unwrap());
}

#[tokio::test]
async fn a_server_not_signed_by_the_root_is_refused_naming_the_certificate() {
    let certificates = Certificates::make();
    let (_dir, secrets, shard) = shard_with_root(&certificates.ca());
    let error = connect(secrets.shard_url(&shard).unwrap())
        .await
        .expect_err("a server signed by another root was trusted");
    // rustls' words reach the log: "invalid peer certificate: UnknownIssuer".
    assert!(
        error.to_string().contains("invalid peer certificate"),
        "{error}"
    );
}

#[tokio::test]
async fn verify_full_refuses_a_host_the_certificate_does_not_name() {
    // 127.0.0.1 is not in the snakeoil certificate, which names localhost.
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={SNAKEOIL}",
        localhost_url().replace("@localhost:", "@127.0.0.1:")
    );
    let error = connect(url)
        .await
        .expect_err("a certificate for another host was trusted");
    assert!(error.to_string().contains("not valid for name"), "{error}");
}
