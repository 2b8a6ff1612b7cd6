//! Rotating a signing secret without a restart: the service reads its secret
//! files again every `--secrets-reload-interval` (100 ms in these tests), as
//! a plain rewrite and as Kubernetes updates a mounted Secret (a new
//! directory behind the `..data` symlink, swapped atomically).

use std::path::Path;
use std::time::Duration;

use hookline_ingest::auth::{header, sign};

use crate::harness::{Answer, Ingest, Options, SECRET, TestSource, bytes, order};

/// The secret the provider rotates to.
const NEXT_SECRET: &str = "whsec_cm90YXRlZC1zaWduaW5nLXNlY3JldC0wMDAwMDAwMDE=";
const GITHUB_SECRET: &str = "gh-webhook-secret-0000000001";
const GITHUB_NEXT_SECRET: &str = "gh-webhook-secret-rotated-0003";
/// Longest a change of the files may take to be served: many reload
/// intervals, so that a loaded machine does not fail the test.
const RELOAD_DEADLINE: Duration = Duration::from_secs(10);

/// POSTs an order to the default route signed with Standard Webhooks `secret`.
async fn post_as(ingest: &Ingest, secret: &str) -> Answer {
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let now = chrono::Utc::now().timestamp();
    let body = bytes(&order(&id, "u1"));
    let headers = [
        (header::WEBHOOK_ID, id.clone()),
        (header::WEBHOOK_TIMESTAMP, now.to_string()),
        (
            header::WEBHOOK_SIGNATURE,
            sign::standard_v1(secret, &id, now, &body).unwrap(),
        ),
    ];
    ingest.post_with("/webhooks/orders", &headers, &body).await
}

/// POSTs an order to the source `gh` signed with GitHub's scheme.
async fn post_github(ingest: &Ingest, secret: &str) -> Answer {
    let body = bytes(&order(&uuid::Uuid::new_v4().to_string(), "u2"));
    let headers = [
        (
            header::GITHUB_SIGNATURE,
            sign::github(secret, &body).unwrap(),
        ),
        (header::GITHUB_DELIVERY, uuid::Uuid::new_v4().to_string()),
    ];
    ingest
        .post_with("/webhooks/gh/orders", &headers, &body)
        .await
}

/// Waits until `post` is answered `status`, or fails at the deadline.
async fn until_answered<F, Fut>(status: u16, what: &str, post: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Answer>,
{
    let deadline = tokio::time::Instant::now() + RELOAD_DEADLINE;
    loop {
        let answer = post().await;
        if answer.status == status {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: still {} after {RELOAD_DEADLINE:?}: {:?}",
            answer.status,
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Replaces `file` whole, as an editor or `kubectl cp` would: never seen
/// half-written.
fn replace(file: &Path, text: &str) {
    let next = file.with_extension("next");
    std::fs::write(&next, text).unwrap();
    std::fs::rename(&next, file).unwrap();
}

#[tokio::test]
async fn a_rotated_signing_secret_is_served_without_a_restart() {
    let ingest = Ingest::start().await;
    let file = ingest.secrets_dir.join("provider/standard-webhooks");
    assert_eq!(post_as(&ingest, NEXT_SECRET).await.status, 401);

    // The rotation's first step: both secrets.
    replace(&file, &format!("{SECRET}\n{NEXT_SECRET}\n"));

    until_answered(202, "the new secret", || post_as(&ingest, NEXT_SECRET)).await;
    let old = post_as(&ingest, SECRET).await;
    assert_eq!(
        old.status, 202,
        "the old secret while both are there: {old:?}"
    );

    // The last step: the old secret goes.
    replace(&file, &format!("{NEXT_SECRET}\n"));

    until_answered(401, "the removed secret", || post_as(&ingest, SECRET)).await;
    assert_eq!(post_as(&ingest, NEXT_SECRET).await.status, 202);
    ingest.stop().await;
}

#[tokio::test]
async fn an_emptied_or_broken_secret_file_keeps_the_keys_in_use() {
    let ingest = Ingest::start().await;
    let file = ingest.secrets_dir.join("provider/standard-webhooks");
    // A change that is served marks when the reloads run.
    replace(&file, &format!("{SECRET}\n{NEXT_SECRET}\n"));
    until_answered(202, "the new secret", || post_as(&ingest, NEXT_SECRET)).await;

    for broken in ["", "not-a-secret\n"] {
        replace(&file, broken);
        // Over many reload intervals, every webhook is still verified.
        let watched = tokio::time::Instant::now() + Duration::from_secs(1);
        while tokio::time::Instant::now() < watched {
            let answer = post_as(&ingest, NEXT_SECRET).await;
            assert_eq!(answer.status, 202, "{broken:?} in the file: {answer:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    ingest.stop().await;
}

#[tokio::test]
async fn a_sources_secret_swapped_behind_the_data_symlink_is_served() {
    let ingest = Ingest::start_with(Options {
        sources: vec![TestSource {
            name: "gh",
            scheme: "github",
            secrets: vec![GITHUB_SECRET.to_owned()],
        }],
        ..Options::default()
    })
    .await;
    assert_eq!(post_github(&ingest, GITHUB_SECRET).await.status, 202);
    // The Secret's folder laid out as the kubelet mounts it: `secret` links to
    // `..data/secret`, and `..data` to the current version's folder.
    let folder = TestSource::file(&ingest.secrets_dir, "gh")
        .parent()
        .unwrap()
        .to_owned();
    mount_version(&folder, "..2026_01_01_00_00_00.1", GITHUB_SECRET);
    std::fs::remove_file(folder.join("secret")).unwrap();
    std::os::unix::fs::symlink("..data/secret", folder.join("secret")).unwrap();
    assert_eq!(post_github(&ingest, GITHUB_SECRET).await.status, 202);

    mount_version(
        &folder,
        "..2026_01_01_00_05_00.2",
        &format!("{GITHUB_NEXT_SECRET}\n"),
    );

    until_answered(202, "the new secret", || {
        post_github(&ingest, GITHUB_NEXT_SECRET)
    })
    .await;
    assert_eq!(post_github(&ingest, GITHUB_SECRET).await.status, 401);
    ingest.stop().await;
}

/// Writes `text` as the key `secret` of a new version `version` of the
/// mounted Secret `folder`, then points `..data` at it in one rename, as the
/// kubelet does.
fn mount_version(folder: &Path, version: &str, text: &str) {
    std::fs::create_dir_all(folder.join(version)).unwrap();
    std::fs::write(folder.join(version).join("secret"), text).unwrap();
    let link = folder.join("..data_tmp");
    std::os::unix::fs::symlink(version, &link).unwrap();
    std::fs::rename(&link, folder.join("..data")).unwrap();
}
