//! What keeps a watch stream within its caller's rights while it is open: it ends with
//! UNAUTHENTICATED (with `ErrorInfo`) as soon as a reload removes the key it was opened with,
//! and it holds its tenant's watch-stream place until it ends.

use futures::{Stream, StreamExt as _};
use tonic::{Request, Status};

use super::{auth::Credential, limit::StreamPermit};
use crate::domain::ApiError;

/// Taken out of a watch call's request, kept by its stream.
#[derive(Debug)]
pub struct StreamGuard {
    credential: Option<Credential>,
    permit: Option<StreamPermit>,
}

impl StreamGuard {
    /// The credential and stream place the layers put into `request`.
    pub fn take<T>(request: &mut Request<T>) -> Self {
        let extensions = request.extensions_mut();
        Self {
            credential: extensions.remove::<Credential>(),
            permit: extensions.remove::<StreamPermit>(),
        }
    }

    /// `stream`, ended with UNAUTHENTICATED when the key is revoked; the place is given back
    /// when the stream is dropped (it ended, or the caller went away).
    pub fn guard<M, S>(self, stream: S) -> impl Stream<Item = Result<M, Status>> + Send + 'static
    where
        S: Stream<Item = Result<M, Status>> + Send + Unpin + 'static,
        M: Send + 'static,
    {
        let Self { credential, permit } = self;
        async_stream::stream! {
            let _permit = permit;
            let mut stream = stream;
            let revoked = async move {
                match credential {
                    Some(credential) => credential.revoked().await,
                    None => std::future::pending().await,
                }
            };
            let mut revoked = std::pin::pin!(revoked);
            loop {
                tokio::select! {
                    biased;
                    () = &mut revoked => {
                        yield Err(ApiError::unauthenticated(
                            "the API key of this stream is no longer valid",
                        )
                        .into());
                        return;
                    }
                    item = stream.next() => match item {
                        Some(item) => yield item,
                        None => return,
                    },
                }
            }
        }
    }
}
