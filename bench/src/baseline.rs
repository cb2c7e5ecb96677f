//! The bare-tonic baseline's shared parts: its generated gRPC code (`proto/bench/v1`), the
//! one request every unary load sends, and the tokio runtime its three programs run on.

use crate::Args;

/// `bench.v1`: the RefundBench service, client and messages.
pub mod pb {
    #![allow(clippy::all)]
    tonic::include_proto!("bench.v1");
}

/// The CreateRefund that `baseline_loadgen` sends (and `--dump-body` writes for h2load): the
/// same fields every time but the idempotency key. 111 bytes of protobuf.
pub fn sample_request(k: u64) -> pb::CreateRefundRequest {
    pb::CreateRefundRequest {
        payment_id: "pay_01HZX3K9Q7V8M2N4P6R8T0W2Y4".to_owned(),
        idempotency_key: format!("idem_{k:020}"),
        amount_minor: 12_345,
        currency: "USD".to_owned(),
        reason: "requested_by_customer".to_owned(),
        merchant_id: "merchant_1234567890".to_owned(),
    }
}

/// `--runtime multi` (default) with `--workers N` threads (default: the cores this process
/// may use, so 1 under `taskset -c 0`), or `--runtime current` (one thread).
pub fn runtime(args: &Args) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = if args.str("runtime", "multi") == "current" {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let workers = args.get(
            "workers",
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        );
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers.max(1));
        b
    };
    builder.enable_all().build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc_frame;

    /// h2load sends exactly this body; its size is part of the published method.
    #[test]
    fn the_h2load_body_is_116_bytes() {
        assert_eq!(grpc_frame(&sample_request(0)).len(), 116);
        assert_eq!(grpc_frame(&sample_request(u64::MAX)).len(), 116);
    }
}
