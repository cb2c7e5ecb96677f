//! What runs beside RefundService: health, reflection, and the HTTP side.

use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::*;

/// Health answers SERVING for the service and the server, without an API key.
#[tokio::test]
async fn health_reports_serving() {
    let gw = spawn().await;
    let channel = Channel::from_shared(gw.grpc_url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["refunds.v1.RefundService", ""] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, i32::from(ServingStatus::Serving), "{service:?}");
    }
}

/// Both reflection versions list RefundService and can describe its file.
#[tokio::test]
async fn reflection_v1_and_v1alpha_list_the_service() {
    use tonic_reflection::pb::{v1, v1alpha};
    let gw = spawn().await;
    let channel = Channel::from_shared(gw.grpc_url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();

    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut answers = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answer.message_response
    else {
        panic!("unexpected answer {answer:?}")
    };
    assert!(
        list.service
            .iter()
            .any(|s| s.name == "refunds.v1.RefundService")
    );

    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "refunds.v1.RefundService".into(),
            ),
        ),
    };
    let mut answers = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    assert!(
        matches!(
            answer.message_response,
            Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(_))
        ),
        "{answer:?}"
    );
}

/// /healthz and /readyz answer 200; /metrics has RPC, provider and refund figures.
#[tokio::test]
async fn http_side_answers() {
    let gw = spawn().await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("10.00", "CONFIRMED").await;
    client
        .create_refund(create(&rid(), "compago", &payment))
        .await
        .unwrap();
    for path in ["/healthz", "/readyz"] {
        let res = gw
            .http
            .get(format!("{}{path}", gw.http_url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
    }
    let metrics = gw.metrics().await;
    for needle in [
        "refund_gateway_grpc_requests_total{method=\"CreateRefund\",code=\"OK\"}",
        "refund_gateway_grpc_request_duration_seconds_bucket",
        "refund_gateway_provider_requests_total{provider=\"compago\",operation=\"submit_refund\",outcome=\"accepted\"}",
        "refund_gateway_provider_request_duration_seconds_bucket",
        "refund_gateway_refunds{provider=\"compago\",status=\"SUCCEEDED\"} 1",
        "refund_gateway_watch_subscribers",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in:\n{metrics}");
    }
}

/// Webhooks for an account that does not exist, or of the wrong kind, are 404.
#[tokio::test]
async fn webhooks_for_unknown_accounts_are_not_found() {
    let gw = spawn().await;
    for path in ["/webhooks/d24/nope", "/webhooks/paymongo/compago"] {
        let res = gw
            .http
            .post(format!("{}{path}", gw.http_url))
            .body(r#"{"refund_id": 1}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
}
