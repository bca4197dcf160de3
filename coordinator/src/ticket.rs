//! Signing and checking fragment tickets.
//!
//! A ticket is a [`FragmentTicket`] encoded with prost, wrapped in a
//! [`SignedTicket`] together with an HMAC-SHA256 of the encoding keyed with
//! the cluster secret. Whoever holds the secret can mint tickets; whoever does
//! not cannot forge or alter one, and an expired ticket is refused.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use openduck_proto::{FragmentTicket, Message, SignedTicket};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a ticket was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TicketError {
    /// The bytes are not a signed ticket at all.
    #[error("malformed ticket")]
    Malformed,
    /// The MAC does not match: forged, altered, or from another cluster.
    #[error("ticket signature is invalid")]
    BadSignature,
    /// The ticket's lifetime is over.
    #[error("ticket expired")]
    Expired,
}

/// Mints and checks tickets with one cluster secret.
#[derive(Clone)]
pub struct TicketSigner {
    secret: Vec<u8>,
    ttl: Duration,
}

impl std::fmt::Debug for TicketSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketSigner")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TicketSigner {
    /// A signer whose tickets live for `ttl`.
    pub fn new(secret: impl Into<Vec<u8>>, ttl: Duration) -> Self {
        TicketSigner {
            secret: secret.into(),
            ttl,
        }
    }

    /// A signer with a fresh random secret: tickets are valid only inside
    /// this process (embedded mode).
    pub fn random(ttl: Duration) -> Self {
        let secret: [u8; 32] = rand::random();
        Self::new(secret.to_vec(), ttl)
    }

    /// How long tickets stay valid.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Sets the ticket's expiry from now and signs it.
    pub fn sign(&self, mut ticket: FragmentTicket) -> Vec<u8> {
        ticket.expires_at_unix_ms = unix_ms(SystemTime::now() + self.ttl);
        let payload = ticket.encode_to_vec();
        let mac = self.mac(&payload).finalize().into_bytes().to_vec();
        SignedTicket { payload, mac }.encode_to_vec()
    }

    /// Checks signature and expiry, and returns the ticket.
    pub fn verify(&self, bytes: &[u8]) -> Result<FragmentTicket, TicketError> {
        let signed = SignedTicket::decode(bytes).map_err(|_| TicketError::Malformed)?;
        self.mac(&signed.payload)
            .verify_slice(&signed.mac)
            .map_err(|_| TicketError::BadSignature)?;
        let ticket = FragmentTicket::decode(signed.payload.as_slice()).map_err(|_| TicketError::Malformed)?;
        if ticket.expires_at_unix_ms <= unix_ms(SystemTime::now()) {
            return Err(TicketError::Expired);
        }
        Ok(ticket)
    }

    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        mac.update(payload);
        mac
    }
}

fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket() -> FragmentTicket {
        FragmentTicket {
            query_id: "q1".into(),
            executor_id: "executor-0".into(),
            database: "mydb".into(),
            sql: "SELECT 42".into(),
            ..Default::default()
        }
    }

    #[test]
    fn round_trips_a_signed_ticket() {
        let signer = TicketSigner::new(b"secret".to_vec(), Duration::from_secs(60));
        let back = signer.verify(&signer.sign(ticket())).unwrap();
        assert_eq!(back.sql, "SELECT 42");
        assert_eq!(back.database, "mydb");
    }

    #[test]
    fn refuses_forged_altered_and_foreign_tickets() {
        let signer = TicketSigner::new(b"secret".to_vec(), Duration::from_secs(60));
        let other = TicketSigner::new(b"other".to_vec(), Duration::from_secs(60));
        assert_eq!(signer.verify(&other.sign(ticket())), Err(TicketError::BadSignature));

        let mut signed = SignedTicket::decode(signer.sign(ticket()).as_slice()).unwrap();
        let mut altered = FragmentTicket::decode(signed.payload.as_slice()).unwrap();
        altered.sql = "DROP TABLE t".into();
        signed.payload = altered.encode_to_vec();
        assert_eq!(signer.verify(&signed.encode_to_vec()), Err(TicketError::BadSignature));

        assert_eq!(signer.verify(b"\xff\xff garbage"), Err(TicketError::Malformed));
    }

    #[test]
    fn refuses_expired_tickets() {
        let signer = TicketSigner::new(b"secret".to_vec(), Duration::ZERO);
        assert_eq!(signer.verify(&signer.sign(ticket())), Err(TicketError::Expired));
    }
}
