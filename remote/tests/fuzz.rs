//! Hostile bytes where an executor or a coordinator reads what it is sent:
//! random and mutated tickets and requests are refused with an error, never
//! a panic, and never accepted as anything but what was signed. The budget
//! (cases per property) is fixed so that the suite's time is too; a failing
//! case is printed shrunk, ready to become a regression test.

use std::time::Duration;

use openduck_proto::executor_request::Request;
use openduck_proto::{ExecutorRequest, FragmentTicket};
use openduck_remote::{TicketError, TicketKind, TicketSigner};
use proptest::prelude::*;

const CASES: u32 = 2000;

fn signer() -> TicketSigner {
    TicketSigner::new(b"a cluster secret of some length".to_vec(), Duration::from_secs(60))
}

fn ticket(sql: &str) -> TicketKind {
    TicketKind::Fragment(FragmentTicket {
        query_id: "q1".into(),
        executor_id: "executor-0".into(),
        database: "mydb".into(),
        sql: sql.into(),
        ..Default::default()
    })
}

fn request(query_id: &str) -> ExecutorRequest {
    ExecutorRequest {
        request: Some(Request::CancelQueryId(query_id.into())),
    }
}

/// A change to bytes: flip bits of one byte, cut the end off, or insert.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bits: u8 },
    Truncate { to: usize },
    Insert { at: usize, bytes: Vec<u8> },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, bits)| Mutation::Flip { at, bits }),
        any::<usize>().prop_map(|to| Mutation::Truncate { to }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutation: &Mutation) -> Vec<u8> {
    match mutation {
        Mutation::Flip { at, bits } => {
            let at = at % bytes.len();
            bytes[at] ^= bits;
        }
        Mutation::Truncate { to } => bytes.truncate(to % bytes.len()),
        Mutation::Insert { at, bytes: inserted } => {
            let at = at % (bytes.len() + 1);
            bytes.splice(at..at, inserted.iter().copied());
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_are_neither_tickets_nor_requests(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let signer = signer();
        prop_assert!(signer.verify(&bytes).is_err());
        prop_assert!(signer.verify_request(&bytes).is_err());
    }

    #[test]
    fn a_mutated_ticket_is_refused_or_still_the_ticket_signed(sql in ".{0,64}", change in mutation()) {
        let signer = signer();
        let original = ticket(&sql);
        let mutated = mutate(signer.sign(original.clone()), &change);
        match signer.verify(&mutated) {
            // A change the MAC does not cover (an unknown field appended) changes nothing signed.
            Ok(read) => prop_assert_eq!(read, original),
            Err(error) => prop_assert!(matches!(
                error,
                TicketError::Malformed | TicketError::BadSignature | TicketError::Expired
            )),
        }
        // Never accepted as a request, mutated or not.
        prop_assert!(signer.verify_request(&mutated).is_err());
    }

    #[test]
    fn a_mutated_request_is_refused_or_still_the_request_signed(id in "[a-z0-9-]{0,40}", change in mutation()) {
        let signer = signer();
        let original = request(&id);
        let mutated = mutate(signer.sign_request(&original), &change);
        if let Ok(read) = signer.verify_request(&mutated) {
            prop_assert_eq!(read, original);
        }
        prop_assert!(signer.verify(&mutated).is_err());
    }
}

/// The properties above must be able to fail: a signer that accepted any
/// payload under a wrong MAC would pass random bytes only by luck, and is
/// caught by the mutation of the SQL a ticket carries.
#[test]
fn a_ticket_whose_sql_changed_is_refused() {
    let signer = signer();
    let bytes = signer.sign(ticket("SELECT 1"));
    let at = bytes
        .windows(8)
        .position(|window| window == b"SELECT 1")
        .expect("the SQL travels in the ticket");
    let mut forged = bytes.clone();
    forged[at + 7] = b'2';
    assert_eq!(signer.verify(&forged), Err(TicketError::BadSignature));
}
