//! Client connections that know their id, so that requests can find their
//! connection's session and the session ends when the connection does.

use std::sync::Arc;

use openduck_remote::{tag_of, LingeringTcp, Tagged};

use crate::session::{ClientSessions, CloseOnDrop, ConnectionId};
use crate::streams::Running;

/// A client's TCP connection; its id reaches every request as an extension,
/// and its session closes when it does.
pub(crate) type TrackedConnection = Tagged<TrackedInfo, CloseOnDrop>;

/// Tracks an accepted client connection.
pub(crate) fn tracked_connection(tcp: LingeringTcp, sessions: Arc<ClientSessions>) -> TrackedConnection {
    let id = ClientSessions::connection_id();
    let info = TrackedInfo {
        id,
        running: Arc::default(),
    };
    Tagged::new(tcp, info, CloseOnDrop { sessions, client: id })
}

/// What tonic puts in each request's extensions for a tracked connection.
#[derive(Debug, Clone)]
pub(crate) struct TrackedInfo {
    pub(crate) id: ConnectionId,
    /// The calls it has running.
    pub(crate) running: Arc<Running>,
}

/// The id of the connection a request arrived on.
pub(crate) fn client_of<T>(request: &tonic::Request<T>) -> Option<ConnectionId> {
    tracked(request.extensions()).map(|info| info.id)
}

/// What a request's extensions say of its connection, over TLS or not.
pub(crate) fn tracked(extensions: &http::Extensions) -> Option<&TrackedInfo> {
    tag_of::<TrackedInfo>(extensions)
}
