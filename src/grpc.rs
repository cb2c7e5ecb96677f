//! The gRPC surface: `refunds.v1.RefundService` as a thin adapter over [`Refunds`]. Each
//! handler gets the caller, converts the request, calls the service and converts back; the
//! `rpc` span and the RPC metrics come from [`layer::RpcLayer`] around the service, the
//! tenants' limits from [`limit::LimitLayer`] around that, and authentication from the
//! [`Authenticate`] interceptor around that. Watch streams keep a [`guard::StreamGuard`].

pub mod auth;
pub mod convert;
pub mod guard;
pub mod layer;
pub mod limit;
pub mod status;
pub mod too_large;
pub mod web;

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
};

use futures::{Stream, StreamExt as _};
use tonic::{Request, Response, Status};

use crate::{
    auth::Caller,
    domain::{ApiError, RefundEvent},
    metrics,
    pb::{self, refund_service_server::RefundService},
    refunds::Refunds,
};

pub use auth::Authenticate;
use guard::StreamGuard;
pub use layer::RpcLayer;
use layer::SpanFields;
pub use limit::LimitLayer;
pub use too_large::TooLargeLayer;

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

/// The caller and the message of a request; what the message is about goes on the call's
/// span first.
fn unpack<T: SpanFields>(mut request: Request<T>) -> Result<(Caller, T), Status> {
    let caller = auth::take_caller(&mut request)?;
    let message = request.into_inner();
    message.record(&tracing::Span::current());
    Ok((caller, message))
}

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

/// A watch stream as messages of type `M`.
fn event_stream<E, M>(events: E, message: fn(pb::RefundEvent) -> M) -> EventStream<M>
where
    E: Stream<Item = Result<Arc<RefundEvent>, ApiError>> + Send + 'static,
    M: Send + 'static,
{
    Box::pin(events.map(move |item| {
        item.map(|event| message(shared_event(&event)))
            .map_err(Status::from)
    }))
}

#[tonic::async_trait]
impl RefundService for RefundApi {
    async fn create_refund(
        &self,
        request: Request<pb::CreateRefundRequest>,
    ) -> Result<Response<pb::CreateRefundResponse>, Status> {
        let (caller, req) = unpack(request)?;
        let draft = convert::create_request(caller.tenant.clone(), req)?;
        let refund = metrics::own_time(self.refunds.create_refund(&caller, draft)).await?;
        tracing::Span::current().record("refund_id", refund.id.as_str());
        Ok(Response::new(convert::create_response(&refund)))
    }

    async fn get_refund(
        &self,
        request: Request<pb::GetRefundRequest>,
    ) -> Result<Response<pb::GetRefundResponse>, Status> {
        let (caller, req) = unpack(request)?;
        let id = convert::refund_id(&req.id)?;
        let refund = self.refunds.get_refund(&caller, id).await?;
        Ok(Response::new(convert::get_response(&refund)))
    }

    async fn list_refunds(
        &self,
        request: Request<pb::ListRefundsRequest>,
    ) -> Result<Response<pb::ListRefundsResponse>, Status> {
        let (caller, req) = unpack(request)?;
        let req = convert::list_request(req)?;
        let page = self.refunds.list_refunds(&caller, req).await?;
        Ok(Response::new(convert::list_response(page)))
    }

    async fn sync_refund(
        &self,
        request: Request<pb::SyncRefundRequest>,
    ) -> Result<Response<pb::SyncRefundResponse>, Status> {
        let (caller, req) = unpack(request)?;
        let id = convert::refund_id(&req.id)?;
        let refund = self.refunds.sync_refund(&caller, id).await?;
        Ok(Response::new(convert::sync_response(&refund)))
    }

    type WatchRefundStream = EventStream<pb::WatchRefundResponse>;

    async fn watch_refund(
        &self,
        mut request: Request<pb::WatchRefundRequest>,
    ) -> Result<Response<Self::WatchRefundStream>, Status> {
        let guard = StreamGuard::take(&mut request);
        let (caller, req) = unpack(request)?;
        let id = convert::refund_id(&req.id)?;
        let events = self.refunds.watch_refund(&caller, id).await?;
        let stream = event_stream(events, |event| pb::WatchRefundResponse {
            event: Some(event),
        });
        Ok(Response::new(Box::pin(guard.guard(stream))))
    }

    type WatchRefundsStream = EventStream<pb::WatchRefundsResponse>;

    async fn watch_refunds(
        &self,
        mut request: Request<pb::WatchRefundsRequest>,
    ) -> Result<Response<Self::WatchRefundsStream>, Status> {
        let guard = StreamGuard::take(&mut request);
        let (caller, req) = unpack(request)?;
        let filter = convert::feed_filter(req)?;
        let events = self.refunds.watch_refunds(&caller, filter).await?;
        let stream = event_stream(events, |event| pb::WatchRefundsResponse {
            event: Some(event),
        });
        Ok(Response::new(Box::pin(guard.guard(stream))))
    }

    async fn get_payment(
        &self,
        request: Request<pb::GetPaymentRequest>,
    ) -> Result<Response<pb::GetPaymentResponse>, Status> {
        let (caller, req) = unpack(request)?;
        let (provider, payment) = convert::payment_request(req)?;
        let payment = self
            .refunds
            .get_payment(&caller, &provider, payment)
            .await?;
        Ok(Response::new(convert::payment_response(&payment)))
    }

    async fn list_providers(
        &self,
        request: Request<pb::ListProvidersRequest>,
    ) -> Result<Response<pb::ListProvidersResponse>, Status> {
        let (caller, _) = unpack(request)?;
        let accounts = self.refunds.list_providers(&caller);
        Ok(Response::new(convert::providers_response(&accounts)))
    }

    async fn list_refund_events(
        &self,
        request: Request<pb::ListRefundEventsRequest>,
    ) -> Result<Response<pb::ListRefundEventsResponse>, Status> {
        let (caller, req) = unpack(request)?;
        let id = convert::refund_id(&req.id)?;
        let page = self
            .refunds
            .list_refund_events(&caller, id, req.page_size, &req.page_token)
            .await?;
        Ok(Response::new(convert::events_response(page)))
    }

    async fn resolve_refund(
        &self,
        request: Request<pb::ResolveRefundRequest>,
    ) -> Result<Response<pb::ResolveRefundResponse>, Status> {
        let (caller, req) = unpack(request)?;
        let resolution = convert::resolve_request(req)?;
        let refund = self.refunds.resolve_refund(&caller, resolution).await?;
        Ok(Response::new(pb::ResolveRefundResponse {
            refund: Some(convert::refund_owned(refund)),
        }))
    }

    async fn approve_refund(
        &self,
        request: Request<pb::ApproveRefundRequest>,
    ) -> Result<Response<pb::ApproveRefundResponse>, Status> {
        let (caller, req) = unpack(request)?;
        let id = convert::refund_id(&req.id)?;
        let refund = self.refunds.approve_refund(&caller, id, &req.note).await?;
        Ok(Response::new(pb::ApproveRefundResponse {
            refund: Some(convert::refund_owned(refund)),
        }))
    }

    async fn cancel_refund(
        &self,
        request: Request<pb::CancelRefundRequest>,
    ) -> Result<Response<pb::CancelRefundResponse>, Status> {
        let (caller, req) = unpack(request)?;
        let id = convert::refund_id(&req.id)?;
        let refund = self.refunds.cancel_refund(&caller, id, &req.note).await?;
        Ok(Response::new(pb::CancelRefundResponse {
            refund: Some(convert::refund_owned(refund)),
        }))
    }
}
