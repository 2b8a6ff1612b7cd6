//! TLS in front of a broker of the test's own: a CA made for the test with the
//! `openssl` command, a certificate it signs for `localhost` and 127.0.0.1,
//! and Debian's `stunnel` terminating TLS in front of a [`PrivateBroker`]
//! that advertises the TLS port (tansu 0.6.0 serves no TLS of its own).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::{PrivateBroker, free_port, wait_for_port};

/// A CA, a server certificate it signed, and a second CA that signed nothing
/// the broker serves.
pub struct Certificates {
    dir: tempfile::TempDir,
}

impl Certificates {
    /// Makes them; fails the test loudly when `openssl` cannot run.
    pub fn make() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let certs = Self { dir };
        for ca in ["ca", "other-ca"] {
            certs.openssl(&[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN=hookline test {ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.crt"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]);
        }
        certs.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            certs.path("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        certs.openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ]);
        certs
    }

    fn openssl(&self, args: &[&str]) {
        let output = std::process::Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| {
                panic!("running `openssl` failed ({e}); run `scripts/stack up`, which installs it")
            });
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// The CA that signed the broker's certificate (PEM).
    pub fn ca(&self) -> PathBuf {
        self.path("ca.crt")
    }

    /// A CA that did not (PEM).
    pub fn other_ca(&self) -> PathBuf {
        self.path("other-ca.crt")
    }
}

/// A broker reachable only through TLS: stunnel on `bootstrap`, the broker
/// behind it advertising that address. Both are killed when dropped.
pub struct TlsBroker {
    /// `127.0.0.1:<port>` of the TLS listener.
    pub bootstrap: String,
    pub certificates: Certificates,
    _broker: PrivateBroker,
    _stunnel: Child,
}

impl TlsBroker {
    /// Starts the broker and stunnel; fails the test loudly when `tansu`,
    /// `stunnel` or `openssl` cannot run.
    pub async fn start() -> Self {
        let certificates = Certificates::make();
        let port = free_port();
        let bootstrap = format!("127.0.0.1:{port}");
        let broker = PrivateBroker::start_advertising(Some(bootstrap.clone())).await;
        let config = certificates.path("stunnel.conf");
        std::fs::write(
            &config,
            stunnel_config(port, &broker.bootstrap, certificates.dir.path()),
        )
        .unwrap();
        let stunnel = Command::new("stunnel")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting `stunnel` failed ({e}); run `scripts/stack up`, which installs it")
            });
        wait_for_port(port, "stunnel").await;
        Self {
            bootstrap,
            certificates,
            _broker: broker,
            _stunnel: stunnel,
        }
    }
}

/// stunnel in the foreground (so that dropping the child stops it), logging
/// to a file beside the certificates for a test that fails.
fn stunnel_config(port: u16, backend: &str, dir: &Path) -> String {
    let dir = dir.display();
    format!(
        "foreground = yes\n\
         pid =\n\
         output = {dir}/stunnel.log\n\
         debug = notice\n\
         [kafka]\n\
         accept = 127.0.0.1:{port}\n\
         connect = {backend}\n\
         cert = {dir}/server.crt\n\
         key = {dir}/server.key\n"
    )
}
