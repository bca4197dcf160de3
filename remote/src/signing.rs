//! Signing and checking what coordinators send executors.
//!
//! A ticket (a [`QueryTicket`], read as a [`TicketKind`]) or an
//! [`ExecutorRequest`] travels encoded with prost
//! inside a [`SignedTicket`] envelope, together with its kind, its expiry and
//! an HMAC-SHA256 over all three keyed with the cluster secret. Whoever holds
//! the secret can mint tickets and requests; whoever does not cannot forge or
//! alter one, pass a ticket off as a request, or use one after it expired.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use openduck_proto::{query_ticket, ExecutorRequest, Message, QueryTicket, SignedTicket};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a ticket redeems: a fragment on one executor, a result the
/// coordinator holds, or a query across executors.
pub use query_ticket::Kind as TicketKind;

const TICKET: &str = "ticket";
const REQUEST: &str = "request";

/// Why a ticket or request was refused.
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

/// Mints and checks tickets and requests with one cluster secret.
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

    /// Signs a ticket, valid for the signer's lifetime from now. It carries
    /// the current span's trace context ([`TicketSigner::verify_traced`]).
    pub fn sign(&self, ticket: TicketKind) -> Vec<u8> {
        let ticket = QueryTicket {
            kind: Some(ticket),
            traceparent: openduck_telemetry::context_text(),
        };
        self.seal(TICKET, ticket.encode_to_vec())
    }

    /// Checks signature and expiry, and returns what the ticket redeems.
    pub fn verify(&self, bytes: &[u8]) -> Result<TicketKind, TicketError> {
        self.verify_traced(bytes).map(|(kind, _)| kind)
    }

    /// [`TicketSigner::verify`], and the trace context the ticket carries
    /// (empty when none): that of the call that planned it.
    pub fn verify_traced(&self, bytes: &[u8]) -> Result<(TicketKind, String), TicketError> {
        let payload = self.open(TICKET, bytes)?;
        let ticket = QueryTicket::decode(payload.as_slice()).map_err(|_| TicketError::Malformed)?;
        let kind = ticket.kind.ok_or(TicketError::Malformed)?;
        Ok((kind, ticket.traceparent))
    }

    /// Signs a request to an executor, valid for the signer's lifetime from now.
    pub fn sign_request(&self, request: &ExecutorRequest) -> Vec<u8> {
        self.seal(REQUEST, request.encode_to_vec())
    }

    /// Checks signature and expiry, and returns the request.
    pub fn verify_request(&self, bytes: &[u8]) -> Result<ExecutorRequest, TicketError> {
        let payload = self.open(REQUEST, bytes)?;
        ExecutorRequest::decode(payload.as_slice()).map_err(|_| TicketError::Malformed)
    }

    fn seal(&self, kind: &str, payload: Vec<u8>) -> Vec<u8> {
        let expires_at_unix_ms = unix_ms(SystemTime::now() + self.ttl);
        let mac = self
            .mac(kind, expires_at_unix_ms, &payload)
            .finalize()
            .into_bytes()
            .to_vec();
        SignedTicket {
            payload,
            mac,
            kind: kind.to_string(),
            expires_at_unix_ms,
        }
        .encode_to_vec()
    }

    fn open(&self, kind: &str, bytes: &[u8]) -> Result<Vec<u8>, TicketError> {
        let signed = SignedTicket::decode(bytes).map_err(|_| TicketError::Malformed)?;
        if signed.kind != kind {
            // Checked before the MAC, which covers the kind as well: a ticket
            // presented as a request is refused whether or not it is genuine.
            return Err(TicketError::Malformed);
        }
        self.mac(&signed.kind, signed.expires_at_unix_ms, &signed.payload)
            .verify_slice(&signed.mac)
            .map_err(|_| TicketError::BadSignature)?;
        if signed.expires_at_unix_ms <= unix_ms(SystemTime::now()) {
            return Err(TicketError::Expired);
        }
        Ok(signed.payload)
    }

    fn mac(&self, kind: &str, expires_at_unix_ms: i64, payload: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        mac.update(&(kind.len() as u64).to_be_bytes());
        mac.update(kind.as_bytes());
        mac.update(&expires_at_unix_ms.to_be_bytes());
        mac.update(payload);
        mac
    }
}

fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use openduck_proto::executor_request::Request;
    use openduck_proto::{FragmentTicket, HeldResult};

    use super::*;

    fn ticket() -> TicketKind {
        TicketKind::Fragment(FragmentTicket {
            query_id: "q1".into(),
            executor_id: "executor-0".into(),
            database: "mydb".into(),
            sql: "SELECT 42".into(),
            ..Default::default()
        })
    }

    fn signer() -> TicketSigner {
        TicketSigner::new(b"secret".to_vec(), Duration::from_secs(60))
    }

    #[test]
    fn round_trips_a_signed_ticket_and_request() {
        let signer = signer();
        assert_eq!(signer.verify(&signer.sign(ticket())).unwrap(), ticket());
        let held = TicketKind::Held(HeldResult { query_id: "q2".into() });
        assert_eq!(signer.verify(&signer.sign(held.clone())).unwrap(), held);

        let request = ExecutorRequest {
            request: Some(Request::CancelQueryId("q1".into())),
        };
        assert_eq!(signer.verify_request(&signer.sign_request(&request)).unwrap(), request);
    }

    #[test]
    fn refuses_forged_altered_and_foreign_tickets() {
        let signer = signer();
        let other = TicketSigner::new(b"other".to_vec(), Duration::from_secs(60));
        assert_eq!(signer.verify(&other.sign(ticket())), Err(TicketError::BadSignature));

        let mut signed = SignedTicket::decode(signer.sign(ticket()).as_slice()).unwrap();
        let mut altered = QueryTicket::decode(signed.payload.as_slice()).unwrap();
        let Some(TicketKind::Fragment(fragment)) = &mut altered.kind else {
            panic!("not a fragment: {altered:?}");
        };
        fragment.sql = "DROP TABLE t".into();
        signed.payload = altered.encode_to_vec();
        assert_eq!(signer.verify(&signed.encode_to_vec()), Err(TicketError::BadSignature));

        // Genuine, but of no kind.
        let empty = signer.seal(TICKET, QueryTicket::default().encode_to_vec());
        assert_eq!(signer.verify(&empty), Err(TicketError::Malformed));

        let mut extended = SignedTicket::decode(signer.sign(ticket()).as_slice()).unwrap();
        extended.expires_at_unix_ms += 3_600_000;
        assert_eq!(signer.verify(&extended.encode_to_vec()), Err(TicketError::BadSignature));

        assert_eq!(signer.verify(b"\xff\xff garbage"), Err(TicketError::Malformed));
    }

    #[test]
    fn a_ticket_is_not_a_request() {
        let signer = signer();
        let ticket = signer.sign(ticket());
        assert_eq!(signer.verify_request(&ticket), Err(TicketError::Malformed));
        let mut relabelled = SignedTicket::decode(ticket.as_slice()).unwrap();
        relabelled.kind = REQUEST.into();
        assert_eq!(
            signer.verify_request(&relabelled.encode_to_vec()),
            Err(TicketError::BadSignature)
        );
    }

    #[test]
    fn refuses_expired_tickets() {
        let signer = TicketSigner::new(b"secret".to_vec(), Duration::ZERO);
        assert_eq!(signer.verify(&signer.sign(ticket())), Err(TicketError::Expired));
    }
}
