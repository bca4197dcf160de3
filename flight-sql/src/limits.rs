//! Oversized requests answer `ResourceExhausted`, the code gRPC specifies for
//! a message over the limit. tonic reports its decoding limit as
//! `OutOfRange`; this layer rewrites that status on the way out, in a
//! trailers-only response or in the trailers that end a stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tonic::Code;
use tower::{Layer, Service};

/// The start of tonic's message for a request over the size limit.
const TOO_LARGE: &str = "Error, decoded message length too large";

/// Whether a status is tonic's "request message too large".
pub(crate) fn is_too_large(code: Code, message: &str) -> bool {
    code == Code::OutOfRange && message.starts_with(TOO_LARGE)
}

/// Rewrites tonic's oversize status (sent as a trailers-only response) to
/// `ResourceExhausted`.
#[derive(Debug, Clone, Default)]
pub(crate) struct LimitsLayer;

impl<S> Layer<S> for LimitsLayer {
    type Service = Limits<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Limits { inner }
    }
}

/// The service [`LimitsLayer`] wraps.
#[derive(Debug, Clone)]
pub(crate) struct Limits<S> {
    inner: S,
}

/// Rewrites the oversize status in a header map (headers or trailers).
fn rewrite(headers: &mut HeaderMap) {
    let status = tonic::Status::from_header_map(headers);
    if status.is_some_and(|status| is_too_large(status.code(), status.message())) {
        headers.insert("grpc-status", HeaderValue::from(Code::ResourceExhausted as i32));
    }
}

/// A response body whose trailers pass through [`rewrite`].
#[derive(Debug)]
pub(crate) struct RewriteTrailers<B> {
    inner: B,
}

impl<B: Body + Unpin> Body for RewriteTrailers<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(match frame.into_trailers() {
                Ok(mut trailers) => {
                    rewrite(&mut trailers);
                    Frame::trailers(trailers)
                }
                Err(frame) => frame,
            }))),
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Limits<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Body + Unpin + Send + 'static,
{
    type Response = Response<RewriteTrailers<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let mut response = inner.call(request).await?;
            rewrite(response.headers_mut());
            Ok(response.map(|inner| RewriteTrailers { inner }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_the_oversize_status_only() {
        let too_large =
            tonic::Status::out_of_range(format!("{TOO_LARGE}: found 200130 bytes, the limit is: 65536 bytes"));
        let mut headers = too_large.into_http::<()>().headers().clone();
        rewrite(&mut headers);
        assert_eq!(
            tonic::Status::from_header_map(&headers).unwrap().code(),
            Code::ResourceExhausted
        );

        let other = tonic::Status::out_of_range("offset past the end");
        let mut headers = other.into_http::<()>().headers().clone();
        rewrite(&mut headers);
        assert_eq!(
            tonic::Status::from_header_map(&headers).unwrap().code(),
            Code::OutOfRange
        );
    }
}
