//! TLS for openduck's servers, and for a coordinator's connections to its
//! executors: certificates in PEM, checked against a CA the operator gives.
//! They are read when a process starts: renewed ones take a restart.

use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

use crate::error::{Error, Result};

/// Longest a TLS handshake may take, on either side: a peer that connects
/// and says nothing holds nothing for long, and a coordinator reaching an
/// executor that accepts but does not serve yet gives up as it would on a
/// plain connection.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

const PEM_CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----";

/// How a server serves TLS: its certificate chain and key, and optionally
/// the CA that its clients' certificates must chain to (mutual TLS).
#[derive(Clone)]
pub struct ServerTls {
    /// The server's certificate chain (PEM).
    pub cert: Vec<u8>,
    /// The server's private key (PEM).
    pub key: Vec<u8>,
    /// When set, clients must present a certificate signed by this CA (PEM).
    pub client_ca: Option<Vec<u8>>,
}

impl ServerTls {
    /// The configuration tonic's server takes.
    pub fn server_config(&self) -> ServerTlsConfig {
        let config = ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert, &self.key))
            .timeout(HANDSHAKE_TIMEOUT);
        match &self.client_ca {
            Some(ca) => config.client_ca_root(Certificate::from_pem(ca)),
            None => config,
        }
    }

    /// Fails, saying what is wrong, when the certificate, key or CA cannot
    /// serve TLS: found at start, not at the first connection.
    pub fn check(&self) -> Result<()> {
        if let Some(ca) = &self.client_ca {
            has_certificate(ca, "the client CA")?;
        }
        has_certificate(&self.cert, "the certificate")?;
        tonic::transport::Server::builder()
            .tls_config(self.server_config())
            .map_err(|error| Error::Tls(format!("the certificate and key cannot serve TLS: {error}")))?;
        Ok(())
    }
}

/// Keys stay out of logs.
impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("client_ca", &self.client_ca.is_some())
            .finish_non_exhaustive()
    }
}

/// How a coordinator reaches executors that serve TLS: their certificates
/// must chain to `ca` and name the host they are reached at, and with
/// `identity` it presents its own certificate (for executors that require
/// one).
#[derive(Clone)]
pub struct ClientTls {
    /// The CA executors' certificates chain to (PEM).
    pub ca: Vec<u8>,
    /// This process's certificate chain and key (PEM), presented to the
    /// executors it connects to.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl ClientTls {
    /// The configuration tonic's client takes.
    pub(crate) fn client_config(&self) -> ClientTlsConfig {
        let config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca))
            .timeout(HANDSHAKE_TIMEOUT);
        match &self.identity {
            Some((cert, key)) => config.identity(Identity::from_pem(cert, key)),
            None => config,
        }
    }

    /// Fails, saying what is wrong, when the CA or this process's
    /// certificate and key cannot make TLS connections: found at start,
    /// not at the first query.
    pub fn check(&self) -> Result<()> {
        has_certificate(&self.ca, "the CA")?;
        if let Some((cert, _)) = &self.identity {
            has_certificate(cert, "the certificate")?;
        }
        Endpoint::from_static("https://executor.invalid")
            .tls_config(self.client_config())
            .map_err(|error| {
                Error::Tls(format!(
                    "the CA, certificate or key cannot make TLS connections: {error}"
                ))
            })?;
        Ok(())
    }
}

/// Fails unless `pem` holds a certificate (an empty or wrong file would
/// otherwise trust nothing, or everything a bad parser let through).
fn has_certificate(pem: &[u8], what: &str) -> Result<()> {
    let text = String::from_utf8_lossy(pem);
    if text.contains(PEM_CERTIFICATE) {
        Ok(())
    } else {
        Err(Error::Tls(format!(
            "{what} is not a PEM certificate (no {PEM_CERTIFICATE} line)"
        )))
    }
}

/// Keys stay out of logs.
impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("identity", &self.identity.is_some())
            .finish_non_exhaustive()
    }
}
