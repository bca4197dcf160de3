//! A bound on the calls one client connection has running at once. Each
//! call holds one of its connection's permits until its response ends (a
//! `DoGet` until its last row, or until the client drops it), so the calls,
//! streams and buffers one connection holds are bounded. A call beyond the
//! bound answers `ResourceExhausted` at once. Health checks (`Check`, not
//! the endless `Watch`) are not counted. Executor connections are a pool of
//! their own (`--max-connections`), held by a stream until it ends: a client
//! that stops reading holds them until `--statement-timeout`.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use tower::{Layer, Service};

use crate::connection::tracked;

/// Calls a connection has running.
#[derive(Debug, Default)]
pub(crate) struct Running(AtomicUsize);

/// Holds each call's permit in its response, refusing calls beyond `limit`
/// per connection.
#[derive(Debug, Clone)]
pub(crate) struct StreamsLayer {
    limit: usize,
}

impl StreamsLayer {
    pub(crate) fn new(limit: usize) -> Self {
        StreamsLayer { limit }
    }
}

impl<S> Layer<S> for StreamsLayer {
    type Service = Streams<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Streams {
            inner,
            limit: self.limit,
        }
    }
}

/// The service [`StreamsLayer`] wraps.
#[derive(Debug, Clone)]
pub(crate) struct Streams<S> {
    inner: S,
    limit: usize,
}

/// One running call of a connection, given back when dropped.
#[derive(Debug)]
struct Permit(Arc<Running>);

impl Permit {
    /// A permit of `running`, unless `limit` calls hold one already.
    fn take(running: &Arc<Running>, limit: usize) -> Option<Permit> {
        let taken = running
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < limit).then_some(n + 1));
        taken.is_ok().then(|| Permit(Arc::clone(running)))
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that holds its call's permit until it is dropped.
#[derive(Debug, Default)]
pub(crate) struct Permitted<B> {
    inner: B,
    permit: Option<Permit>,
}

impl<B: Body + Unpin> Body for Permitted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            // Sent to the end: the call is over even if the body lingers.
            self.permit.take();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Streams<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<Permitted<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let counted = request.uri().path().strip_prefix(openduck_remote::HEALTH_PATH_PREFIX) != Some("Check");
        let running = counted
            .then(|| tracked(request.extensions()).map(|info| Arc::clone(&info.running)))
            .flatten();
        let permit = match &running {
            Some(running) => match Permit::take(running, self.limit) {
                Some(permit) => Some(permit),
                None => {
                    let status = tonic::Status::resource_exhausted(format!(
                        "this connection has {} calls running, the most the server allows \
                         (--max-streams-per-connection): read a result to its end or cancel it first, \
                         or use another connection",
                        self.limit
                    ));
                    let response = status
                        .into_http::<ResBody>()
                        .map(|inner| Permitted { inner, permit: None });
                    return Box::pin(async move { Ok(response) });
                }
            },
            None => None,
        };
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = inner.call(request).await?;
            Ok(response.map(|inner| Permitted { inner, permit }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_run_out_at_the_limit_and_come_back_when_dropped() {
        let running = Arc::new(Running::default());
        let first = Permit::take(&running, 2).expect("a first permit");
        let second = Permit::take(&running, 2).expect("a second permit");
        assert!(Permit::take(&running, 2).is_none(), "a third is refused");
        drop(first);
        let third = Permit::take(&running, 2).expect("given back");
        drop((second, third));
        assert_eq!(running.0.load(Ordering::SeqCst), 0);
    }
}
