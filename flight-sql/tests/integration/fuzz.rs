//! Hostile bytes at the Flight SQL front end, with a fixed budget of
//! deterministic cases: random and mutated Flight SQL commands in `Any`
//! (GetFlightInfo, GetSchema, PollFlightInfo), tickets (DoGet), action
//! bodies (DoAction), and Arrow IPC in DoPut (schemas that lie, truncated
//! bodies, huge claimed lengths). Every call ends, within a deadline, with
//! an answer a client can act on: success, or a status that says what was
//! wrong (never INTERNAL or UNKNOWN, never a dropped connection), and the
//! server still answers a query afterwards.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::sql::{
    ActionBeginTransactionRequest, ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionEndTransactionRequest, CommandGetDbSchemas, CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTables,
    CommandPreparedStatementQuery, CommandStatementIngest, CommandStatementQuery, ProstMessageExt,
    TableDefinitionOptions, TableExistsOption, TableNotExistOption, TicketStatementQuery,
};
use arrow_flight::{Action, FlightData, FlightDescriptor, Ticket};
use futures::{StreamExt, TryStreamExt};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use prost::Message;
use tonic::Code;

use crate::fixture::TestServer;

/// Cases per kind of input; the whole budget is printed.
const CASES: u32 = 2048;
/// Longest one call may take before it counts as a hang.
const DEADLINE: Duration = Duration::from_secs(30);

/// A change to bytes: flip bits of one byte, cut the end off, insert bytes,
/// or overwrite four bytes with a huge little-endian length.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bits: u8 },
    Truncate { to: usize },
    Insert { at: usize, bytes: Vec<u8> },
    HugeLength { at: usize },
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let one = prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, bits)| Mutation::Flip { at, bits }),
        any::<usize>().prop_map(|to| Mutation::Truncate { to }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        any::<usize>().prop_map(|at| Mutation::HugeLength { at }),
    ];
    prop::collection::vec(one, 1..4)
}

fn mutate(mut bytes: Vec<u8>, changes: &[Mutation]) -> Vec<u8> {
    for change in changes {
        if bytes.is_empty() {
            bytes.push(0);
        }
        match change {
            Mutation::Flip { at, bits } => {
                let at = at % bytes.len();
                bytes[at] ^= bits;
            }
            Mutation::Truncate { to } => bytes.truncate(to % bytes.len()),
            Mutation::Insert { at, bytes: inserted } => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, inserted.iter().copied());
            }
            Mutation::HugeLength { at } => {
                let at = at % bytes.len();
                let end = (at + 4).min(bytes.len());
                bytes[at..end].copy_from_slice(&0x7fff_fff0u32.to_le_bytes()[..end - at]);
            }
        }
    }
    bytes
}

/// Bytes to send: a valid seed mutated, or random bytes.
fn hostile(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => (prop::sample::select(seeds), mutations()).prop_map(|(seed, changes)| mutate(seed, &changes)),
        1 => prop::collection::vec(any::<u8>(), 0..512),
    ]
}

/// Whether `code` answers a malformed or meaningless request as it should.
fn acceptable(code: Code) -> bool {
    matches!(
        code,
        Code::Ok
            | Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::Unimplemented
            | Code::Unauthenticated
            | Code::PermissionDenied
            | Code::FailedPrecondition
            | Code::OutOfRange
            | Code::DataLoss
            | Code::ResourceExhausted
    )
}

/// Runs `call` on the test's runtime from proptest's synchronous closure.
fn block_on<T>(call: impl std::future::Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(call))
}

/// The code a call ended with, or a failure when it hung.
fn ended(code: Result<Code, tokio::time::error::Elapsed>, what: &str, input: &[u8]) -> Result<(), TestCaseError> {
    let code = code.map_err(|_| TestCaseError::fail(format!("{what} hung on {input:?}")))?;
    prop_assert!(acceptable(code), "{what} answered {code:?} to {input:?}");
    Ok(())
}

fn runner() -> TestRunner {
    let config = Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
}

fn any_bytes(message: impl ProstMessageExt) -> Vec<u8> {
    message.as_any().encode_to_vec()
}

/// Commands a descriptor may carry, each valid as sent.
fn command_seeds() -> Vec<Vec<u8>> {
    vec![
        any_bytes(CommandStatementQuery {
            query: "SELECT id, name FROM t WHERE id > 1".into(),
            transaction_id: None,
        }),
        any_bytes(CommandGetTables {
            catalog: Some("mydb".into()),
            db_schema_filter_pattern: Some("%".into()),
            table_name_filter_pattern: None,
            table_types: vec!["BASE TABLE".into()],
            include_schema: true,
        }),
        any_bytes(CommandGetDbSchemas {
            catalog: None,
            db_schema_filter_pattern: None,
        }),
        any_bytes(CommandGetPrimaryKeys {
            catalog: None,
            db_schema: None,
            table: "t".into(),
        }),
        any_bytes(CommandGetSqlInfo { info: vec![0, 1, 500] }),
        any_bytes(CommandPreparedStatementQuery {
            prepared_statement_handle: b"no such handle".to_vec().into(),
        }),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_commands_tickets_and_actions_get_clear_answers() {
    let server = TestServer::start().await;
    server
        .update("CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR)")
        .await
        .unwrap();
    server.update("INSERT INTO t VALUES (1, 'a'), (2, 'b')").await.unwrap();
    let flight = server.flight();

    // The seeds themselves are answered: a server that refused everything
    // would pass what follows.
    for cmd in &command_seeds()[..5] {
        let descriptor = FlightDescriptor::new_cmd(cmd.clone());
        let answered = flight.clone().get_flight_info(server.request(descriptor)).await;
        assert!(answered.is_ok(), "{answered:?}");
    }

    let mut runner = runner();
    runner
        .run(&hostile(command_seeds()), |cmd| {
            for call in ["GetFlightInfo", "GetSchema", "PollFlightInfo"] {
                let descriptor = FlightDescriptor::new_cmd(cmd.clone());
                let mut client = flight.clone();
                let code = block_on(tokio::time::timeout(DEADLINE, async {
                    let answered = match call {
                        "GetFlightInfo" => client.get_flight_info(server.request(descriptor)).await.map(drop),
                        "GetSchema" => client.get_schema(server.request(descriptor)).await.map(drop),
                        _ => client.poll_flight_info(server.request(descriptor)).await.map(drop),
                    };
                    answered.err().map_or(Code::Ok, |status| status.code())
                }));
                ended(code, call, &cmd)?;
            }
            Ok(())
        })
        .unwrap();

    // Tickets: the real one of a query, other Flight SQL tickets, mutated.
    let info = server
        .info(CommandStatementQuery {
            query: "SELECT id FROM t".into(),
            transaction_id: None,
        })
        .await
        .unwrap();
    let real = info.endpoint[0].ticket.clone().unwrap().ticket.to_vec();
    let tickets = vec![
        real,
        any_bytes(TicketStatementQuery {
            statement_handle: b"forged".to_vec().into(),
        }),
        command_seeds()[0].clone(),
    ];
    runner
        .run(&hostile(tickets), |ticket| {
            let mut client = flight.clone();
            let request = server.request(Ticket::new(ticket.clone()));
            let code = block_on(tokio::time::timeout(DEADLINE, async {
                match client.do_get(request).await {
                    Err(status) => status.code(),
                    Ok(stream) => match stream.into_inner().try_collect::<Vec<_>>().await {
                        Ok(_) => Code::Ok,
                        Err(status) => status.code(),
                    },
                }
            }));
            ended(code, "DoGet", &ticket)
        })
        .unwrap();

    // Actions: each type with its valid body, mutated.
    let actions: Vec<(&str, Vec<u8>)> = vec![
        (
            "CreatePreparedStatement",
            any_bytes(ActionCreatePreparedStatementRequest {
                query: "SELECT name FROM t WHERE id = ?".into(),
                transaction_id: None,
            }),
        ),
        (
            "ClosePreparedStatement",
            any_bytes(ActionClosePreparedStatementRequest {
                prepared_statement_handle: b"no such handle".to_vec().into(),
            }),
        ),
        ("BeginTransaction", any_bytes(ActionBeginTransactionRequest {})),
        (
            "EndTransaction",
            any_bytes(ActionEndTransactionRequest {
                transaction_id: b"no such transaction".to_vec().into(),
                action: 2,
            }),
        ),
        ("CancelFlightInfo", Vec::new()),
        ("openduck.query_history", Vec::new()),
    ];
    let strategy = (prop::sample::select(actions.clone()), mutations(), any::<bool>())
        .prop_map(|((kind, body), changes, mutated)| (kind, if mutated { mutate(body, &changes) } else { body }));
    runner
        .run(&strategy, |(kind, body)| {
            let mut client = flight.clone();
            let request = server.request(Action::new(kind, body.clone()));
            let code = block_on(tokio::time::timeout(DEADLINE, async {
                match client.do_action(request).await {
                    Err(status) => status.code(),
                    Ok(stream) => match stream.into_inner().try_collect::<Vec<_>>().await {
                        Ok(_) => Code::Ok,
                        Err(status) => status.code(),
                    },
                }
            }));
            ended(code, kind, &body)
        })
        .unwrap();

    // Still serving.
    assert_eq!(server.scalar("SELECT count(*) FROM t").await, "2");
    println!("fuzz budget: {CASES} cases each of descriptors (x3 calls), tickets and actions");
}

/// The Flight data of an ingest into `table`: the descriptor, the schema,
/// and the batches.
async fn ingest_messages(table: &str, batch: RecordBatch) -> Vec<FlightData> {
    let command = CommandStatementIngest {
        table_definition_options: Some(TableDefinitionOptions {
            if_not_exist: TableNotExistOption::Create as i32,
            if_exists: TableExistsOption::Append as i32,
        }),
        table: table.into(),
        schema: None,
        catalog: None,
        temporary: false,
        transaction_id: None,
        options: Default::default(),
    };
    let descriptor = FlightDescriptor::new_cmd(any_bytes(command));
    FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(descriptor))
        .build(futures::stream::iter([Ok(batch)]))
        .try_collect()
        .await
        .unwrap()
}

/// Which part of which message a DoPut case changes.
#[derive(Debug, Clone)]
enum Damage {
    /// The IPC header of message `index` (the schema or a batch).
    Header { index: usize, changes: Vec<Mutation> },
    /// The body of message `index`.
    Body { index: usize, changes: Vec<Mutation> },
    /// The descriptor's command.
    Command { changes: Vec<Mutation> },
    /// The schema of one batch with the batches of another: a schema that lies.
    LyingSchema,
    /// Only the first `keep` messages: the stream ends early.
    Cut { keep: usize },
}

fn damages() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), mutations()).prop_map(|(index, changes)| Damage::Header { index, changes }),
        (any::<usize>(), mutations()).prop_map(|(index, changes)| Damage::Body { index, changes }),
        mutations().prop_map(|changes| Damage::Command { changes }),
        Just(Damage::LyingSchema),
        (0..3usize).prop_map(|keep| Damage::Cut { keep }),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_arrow_ipc_in_do_put_gets_clear_answers() {
    let server = TestServer::start().await;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]));
    let rows = 100;
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int64Array::from_iter_values(0..rows)),
            Arc::new(StringArray::from_iter_values((0..rows).map(|i| format!("row {i}")))),
        ],
    )
    .unwrap();
    let messages = ingest_messages("fuzz_target", batch.clone()).await;
    // Another schema (one Float64 column), to send before the true batches.
    let liar = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("wide", DataType::Float64, false)])),
        vec![Arc::new(arrow::array::Float64Array::from_iter_values(
            (0..rows).map(|i| i as f64),
        ))],
    )
    .unwrap();
    let lying_schema = ingest_messages("fuzz_target", liar).await;

    let flight = server.flight();
    // Undamaged, the ingest and one of a Null column succeed: a server that
    // refused everything would pass what follows.
    let nulls = RecordBatch::try_from_iter([("n", Arc::new(arrow::array::NullArray::new(10)) as _)]).unwrap();
    for sent in [messages.clone(), ingest_messages("nulls", nulls).await] {
        let put = flight.clone().do_put(server.request(futures::stream::iter(sent))).await;
        let results: Vec<_> = put.unwrap().into_inner().try_collect().await.unwrap();
        assert_eq!(results.len(), 1);
    }
    let mut runner = runner();
    runner
        .run(&damages(), |damage| {
            let mut sent = messages.clone();
            match &damage {
                Damage::Header { index, changes } => {
                    let at = index % sent.len();
                    sent[at].data_header = mutate(sent[at].data_header.to_vec(), changes).into();
                }
                Damage::Body { index, changes } => {
                    let at = index % sent.len();
                    sent[at].data_body = mutate(sent[at].data_body.to_vec(), changes).into();
                }
                Damage::Command { changes } => {
                    let descriptor = sent[0].flight_descriptor.as_mut().unwrap();
                    descriptor.cmd = mutate(descriptor.cmd.to_vec(), changes).into();
                }
                Damage::LyingSchema => {
                    // The liar's schema message, then the true batches.
                    sent[0] = lying_schema[0].clone();
                }
                Damage::Cut { keep } => sent.truncate(*keep),
            }
            let mut client = flight.clone();
            let request = server.request(futures::stream::iter(sent));
            let code = block_on(tokio::time::timeout(DEADLINE, async {
                match client.do_put(request).await {
                    Err(status) => status.code(),
                    Ok(stream) => {
                        let mut results = stream.into_inner();
                        let mut code = Code::Ok;
                        while let Some(result) = results.next().await {
                            if let Err(status) = result {
                                code = status.code();
                                break;
                            }
                        }
                        code
                    }
                }
            }));
            ended(code, "DoPut", format!("{damage:?}").as_bytes())
        })
        .unwrap();

    // Still serving.
    assert_eq!(server.scalar("SELECT 42").await, "42");
    println!("fuzz budget: {CASES} DoPut cases");
}
