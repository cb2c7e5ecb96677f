//! The gRPC surface: `refunds.v1.RefundService` as a thin adapter over [`Refunds`]
//! (authenticate, convert, call, convert back), plus health and reflection.

pub mod auth;
pub mod convert;
pub mod status;

use std::pin::Pin;

use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt as _};
use tonic::{Request, Response, Status};
use tracing::Instrument as _;

use crate::{
    domain::RefundEvent,
    metrics::{self, track_rpc},
    pb::{self, refund_service_server::RefundService},
    refunds::Refunds,
};

pub use auth::Authenticate;

/// The service implementation.
#[derive(Clone, Debug)]
pub struct RefundApi {
    refunds: Refunds,
}

impl RefundApi {
    pub fn new(refunds: Refunds) -> Self {
        Self { refunds }
    }
}

type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The protobuf form of an event, converted once and shared by every subscriber that sends
/// it: a fan-out to thousands of streams sends the same event (the same `Arc` from the bus)
/// thousands of times, nearly at once, so a single slot (the last event converted) serves
/// almost every one of them. The slot keeps the event itself, so a hit is the very same event.
fn shared_event(event: &Arc<RefundEvent>) -> pb::RefundEvent {
    type Slot = Option<(Arc<RefundEvent>, Arc<pb::RefundEvent>)>;
    static LAST: Mutex<Slot> = Mutex::new(None);
    let cached = LAST.lock().ok().and_then(|slot| {
        slot.as_ref()
            .filter(|(seen, _)| Arc::ptr_eq(seen, event))
            .map(|(_, pb)| pb.clone())
    });
    let pb = cached.unwrap_or_else(|| {
        let pb = Arc::new(convert::event(event));
        if let Ok(mut slot) = LAST.lock() {
            *slot = Some((event.clone(), pb.clone()));
        }
        pb
    });
    pb::RefundEvent::clone(&pb)
}

#[tonic::async_trait]
impl RefundService for RefundApi {
    async fn create_refund(
        &self,
        request: Request<pb::CreateRefundRequest>,
    ) -> Result<Response<pb::CreateRefundResponse>, Status> {
        let span = tracing::info_span!(
            "rpc",
            method = "CreateRefund",
            tenant = tracing::field::Empty,
            request_id = %request.get_ref().request_id,
            provider = %request.get_ref().provider,
            refund_id = tracing::field::Empty,
        );
        track_rpc("CreateRefund", async {
            let caller = auth::caller(&request)?;
            tracing::Span::current().record("tenant", caller.tenant.as_str());
            let draft = convert::create_request(caller.tenant.clone(), request.into_inner())?;
            let refund = metrics::own_time(self.refunds.create_refund(&caller, draft)).await?;
            tracing::Span::current().record("refund_id", refund.id.as_str());
            Ok(Response::new(pb::CreateRefundResponse {
                refund: Some(convert::refund(&refund)),
            }))
        })
        .instrument(span)
        .await
    }

    async fn get_refund(
        &self,
        request: Request<pb::GetRefundRequest>,
    ) -> Result<Response<pb::GetRefundResponse>, Status> {
        let span =
            tracing::info_span!("rpc", method = "GetRefund", refund_id = %request.get_ref().id);
        track_rpc("GetRefund", async {
            let caller = auth::caller(&request)?;
            let id = convert::refund_id(&request.get_ref().id)?;
            let refund = self.refunds.get_refund(&caller, id).await?;
            Ok(Response::new(pb::GetRefundResponse {
                refund: Some(convert::refund(&refund)),
            }))
        })
        .instrument(span)
        .await
    }

    async fn list_refunds(
        &self,
        request: Request<pb::ListRefundsRequest>,
    ) -> Result<Response<pb::ListRefundsResponse>, Status> {
        let span = tracing::info_span!("rpc", method = "ListRefunds");
        track_rpc("ListRefunds", async {
            let caller = auth::caller(&request)?;
            let req = convert::list_request(request.into_inner())?;
            let page = self.refunds.list_refunds(&caller, req).await?;
            Ok(Response::new(pb::ListRefundsResponse {
                refunds: page
                    .refunds
                    .into_iter()
                    .map(convert::refund_owned)
                    .collect(),
                next_page_token: page.next_page_token,
            }))
        })
        .instrument(span)
        .await
    }

    async fn sync_refund(
        &self,
        request: Request<pb::SyncRefundRequest>,
    ) -> Result<Response<pb::SyncRefundResponse>, Status> {
        let span =
            tracing::info_span!("rpc", method = "SyncRefund", refund_id = %request.get_ref().id);
        track_rpc("SyncRefund", async {
            let caller = auth::caller(&request)?;
            let id = convert::refund_id(&request.get_ref().id)?;
            let refund = self.refunds.sync_refund(&caller, id).await?;
            Ok(Response::new(pb::SyncRefundResponse {
                refund: Some(convert::refund(&refund)),
            }))
        })
        .instrument(span)
        .await
    }

    type WatchRefundStream = EventStream<pb::WatchRefundResponse>;

    async fn watch_refund(
        &self,
        request: Request<pb::WatchRefundRequest>,
    ) -> Result<Response<Self::WatchRefundStream>, Status> {
        let span =
            tracing::info_span!("rpc", method = "WatchRefund", refund_id = %request.get_ref().id);
        track_rpc("WatchRefund", async {
            let caller = auth::caller(&request)?;
            let id = convert::refund_id(&request.get_ref().id)?;
            let events = self.refunds.watch_refund(&caller, id).await?;
            let stream = events.map(|item| {
                item.map(|event| pb::WatchRefundResponse {
                    event: Some(shared_event(&event)),
                })
                .map_err(Status::from)
            });
            Ok(Response::new(Box::pin(stream) as Self::WatchRefundStream))
        })
        .instrument(span)
        .await
    }

    type WatchRefundsStream = EventStream<pb::WatchRefundsResponse>;

    async fn watch_refunds(
        &self,
        request: Request<pb::WatchRefundsRequest>,
    ) -> Result<Response<Self::WatchRefundsStream>, Status> {
        let span = tracing::info_span!("rpc", method = "WatchRefunds");
        track_rpc("WatchRefunds", async {
            let caller = auth::caller(&request)?;
            let filter = convert::feed_filter(request.into_inner())?;
            let events = self.refunds.watch_refunds(&caller, filter).await?;
            let stream = events.map(|item| {
                item.map(|event| pb::WatchRefundsResponse {
                    event: Some(shared_event(&event)),
                })
                .map_err(Status::from)
            });
            Ok(Response::new(Box::pin(stream) as Self::WatchRefundsStream))
        })
        .instrument(span)
        .await
    }

    async fn get_payment(
        &self,
        request: Request<pb::GetPaymentRequest>,
    ) -> Result<Response<pb::GetPaymentResponse>, Status> {
        let span = tracing::info_span!("rpc", method = "GetPayment", provider = %request.get_ref().provider);
        track_rpc("GetPayment", async {
            let caller = auth::caller(&request)?;
            let (provider, payment) = convert::payment_request(request.into_inner())?;
            let payment = self
                .refunds
                .get_payment(&caller, &provider, payment)
                .await?;
            Ok(Response::new(pb::GetPaymentResponse {
                payment: Some(convert::payment(&payment)),
            }))
        })
        .instrument(span)
        .await
    }

    async fn list_providers(
        &self,
        request: Request<pb::ListProvidersRequest>,
    ) -> Result<Response<pb::ListProvidersResponse>, Status> {
        track_rpc("ListProviders", async {
            let caller = auth::caller(&request)?;
            let providers = self
                .refunds
                .list_providers(&caller)
                .iter()
                .map(|a| convert::provider_info(a))
                .collect();
            Ok(Response::new(pb::ListProvidersResponse { providers }))
        })
        .await
    }
}
