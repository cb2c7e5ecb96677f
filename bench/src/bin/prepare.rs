//! Set-up steps of the benchmark suite that need a gRPC client.
//!
//! ```text
//! prepare get-body    --addr URL --out FILE
//!     creates one refund (load-test Compago payment), checks GetRefund answers it, and
//!     writes the h2load body of GetRefund{id} to FILE (gRPC frame: 0x00, u32 BE length,
//!     protobuf). Prints {"id": ...}.
//! prepare populate    --addr URL --count 100000 [--concurrency 128] [--conns 4]
//!     creates COUNT refunds through CreateRefund (unique load-test payments), as fast as
//!     the gateway takes them. Prints count, errors, seconds, req/s.
//! prepare list-bodies --addr URL --first FILE --deep FILE [--depth 50000] [--page-size 50]
//!     writes the h2load bodies of ListRefunds: the first page, and the page that starts
//!     DEPTH refunds down the list (its page token found by paging with page_size 500),
//!     after checking both answer PAGE_SIZE refunds. Prints the deep token's length.
//! ```

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Instant,
};

use refund_gateway::pb::{self, refund_service_client::RefundServiceClient};
use refund_gateway_bench::{Args, Ids, connect, emit, grpc_frame, load_test_refund};
use serde_json::json;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = argv.split_first() else {
        return Err("usage: prepare get-body|populate|list-bodies --addr URL ...".into());
    };
    let args = Args::from(rest.to_vec());
    let addr = args.str("addr", "http://127.0.0.1:50051");
    match command.as_str() {
        "get-body" => get_body(&addr, &args).await,
        "populate" => populate(&addr, &args).await,
        "list-bodies" => list_bodies(&addr, &args).await,
        other => Err(format!("unknown command {other}").into()),
    }
}

async fn get_body(addr: &str, args: &Args) -> Result<(), Error> {
    let out = args.opt("out").ok_or("--out FILE is required")?;
    let provider = args.str("provider", "compago");
    let mut client = RefundServiceClient::new(connect(addr, 1).await?.remove(0));
    let refund = client
        .create_refund(load_test_refund(&Ids::new(), 0, &provider))
        .await?
        .into_inner()
        .refund
        .ok_or("CreateRefund answered no refund")?;
    let request = pb::GetRefundRequest {
        id: refund.id.clone(),
    };
    let got = client
        .get_refund(request.clone())
        .await?
        .into_inner()
        .refund;
    if got.as_ref().map(|r| &r.id) != Some(&refund.id) {
        return Err("GetRefund did not answer the refund just created".into());
    }
    std::fs::write(&out, grpc_frame(&request))?;
    emit(&json!({"id": refund.id, "status": refund.status, "body": out}));
    Ok(())
}

async fn populate(addr: &str, args: &Args) -> Result<(), Error> {
    let count: u64 = args.get("count", 100_000);
    let n: usize = args.get("concurrency", 128);
    let conns: usize = args.get("conns", n.min(4));
    let provider = Arc::new(args.str("provider", "compago"));
    let chans = connect(addr, conns).await?;
    let ids = Ids::new();
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let mut client = RefundServiceClient::new(chans[i % chans.len()].clone());
        let (ids, next, errors, provider) =
            (ids.clone(), next.clone(), errors.clone(), provider.clone());
        handles.push(tokio::spawn(async move {
            let mut first_error = None;
            loop {
                let k = next.fetch_add(1, Relaxed);
                if k >= count {
                    break;
                }
                if let Err(status) = client
                    .create_refund(load_test_refund(&ids, k, &provider))
                    .await
                {
                    errors.fetch_add(1, Relaxed);
                    first_error.get_or_insert(status);
                }
            }
            first_error
        }));
    }
    let mut first_error = None;
    for h in handles {
        if let Some(e) = h.await? {
            first_error.get_or_insert(e);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let errors = errors.load(Relaxed);
    emit(&json!({
        "tool": "populate", "count": count, "errors": errors, "seconds": (secs * 100.0).round() / 100.0,
        "rps": (count as f64 / secs).round(),
        "first_error": first_error.map(|e| e.to_string()),
    }));
    if errors > 0 {
        return Err(format!("{errors} of {count} CreateRefund calls failed").into());
    }
    Ok(())
}

async fn list_bodies(addr: &str, args: &Args) -> Result<(), Error> {
    let first = args.opt("first").ok_or("--first FILE is required")?;
    let deep = args.opt("deep").ok_or("--deep FILE is required")?;
    let depth: usize = args.get("depth", 50_000);
    let page_size: i32 = args.get("page-size", 50);
    let mut client = RefundServiceClient::new(connect(addr, 1).await?.remove(0));
    let list = |page_size: i32, page_token: String| pb::ListRefundsRequest {
        page_size,
        page_token,
        ..Default::default()
    };

    // Walk down DEPTH refunds with big pages to find the token that starts there.
    let mut token = String::new();
    let mut skipped = 0;
    while skipped < depth {
        let step = (depth - skipped).min(500) as i32;
        let page = client.list_refunds(list(step, token)).await?.into_inner();
        skipped += page.refunds.len();
        token = page.next_page_token;
        if token.is_empty() {
            return Err(
                format!("the store holds only {skipped} refunds, fewer than {depth}").into(),
            );
        }
    }
    for (request, path) in [
        (list(page_size, String::new()), &first),
        (list(page_size, token.clone()), &deep),
    ] {
        let page = client.list_refunds(request.clone()).await?.into_inner();
        if page.refunds.len() != page_size as usize {
            return Err(format!(
                "ListRefunds answered {} refunds, not {page_size}",
                page.refunds.len()
            )
            .into());
        }
        std::fs::write(path, grpc_frame(&request))?;
    }
    emit(
        &json!({"first": first, "deep": deep, "depth": depth, "page_size": page_size, "token_len": token.len()}),
    );
    Ok(())
}
