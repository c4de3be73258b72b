//! Certificates for TLS tests, made with the `openssl` command: a private CA, a server certificate for
//! 127.0.0.1 and `localhost`, and a client certificate for mutual TLS. They live in a temporary directory
//! removed on drop.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context, bail};

/// One CA with a server and a client certificate it signed (P-256 keys, PEM files, valid for two days).
pub struct TestCertificates {
    dir: tempfile::TempDir,
}

impl TestCertificates {
    /// Makes a fresh CA and its two certificates; panics with the reason when `openssl` fails.
    pub fn generate() -> Self {
        match Self::try_generate() {
            Ok(c) => c,
            Err(e) => panic!("could not make test certificates: {e:#}"),
        }
    }

    pub fn try_generate() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("temporary directory for certificates")?;
        let d = dir.path();
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        )?;
        std::fs::write(d.join("client.ext"), "extendedKeyUsage=clientAuth\n")?;
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        openssl(
            d,
            &[
                &["req", "-x509"][..],
                &ec,
                &["-days", "2", "-subj", "/CN=wgate test CA", "-keyout", "ca.key", "-out", "ca.crt"],
            ]
            .concat(),
        )?;
        for who in ["server", "client"] {
            let (key, csr, crt, ext) =
                (format!("{who}.key"), format!("{who}.csr"), format!("{who}.crt"), format!("{who}.ext"));
            let cn = format!("/CN=wgate test {who}");
            openssl(d, &[&["req"][..], &ec, &["-subj", &cn, "-keyout", &key, "-out", &csr]].concat())?;
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.crt",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-extfile",
                    &ext,
                    "-out",
                    &crt,
                ],
            )?;
        }
        Ok(Self { dir })
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.dir.path().join("server.crt")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }
    pub fn client_cert(&self) -> PathBuf {
        self.dir.path().join("client.crt")
    }
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client.key")
    }

    /// The PEM bytes of a file, for building a `redis::Client` directly.
    pub(crate) fn read(path: &Path) -> Vec<u8> {
        std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    }
}

fn openssl(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out =
        Command::new("openssl").args(args).current_dir(dir).stdin(Stdio::null()).output().context(
            "running openssl: install it with `sudo apt-get install -y openssl` (scripts/install-deps does)",
        )?;
    if !out.status.success() {
        bail!("openssl {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}
