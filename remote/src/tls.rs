//! TLS for openduck's servers, and for a coordinator's connections to its
//! executors: certificates in PEM, checked against a CA the operator gives.

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

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
        let config = ServerTlsConfig::new().identity(Identity::from_pem(&self.cert, &self.key));
        match &self.client_ca {
            Some(ca) => config.client_ca_root(Certificate::from_pem(ca)),
            None => config,
        }
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
        let config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca));
        match &self.identity {
            Some((cert, key)) => config.identity(Identity::from_pem(cert, key)),
            None => config,
        }
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
