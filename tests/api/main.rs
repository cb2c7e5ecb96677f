//! Black-box tests of the gateway: each starts the real server on loopback ports with a
//! fresh SQLite file and the provider simulators over real HTTP, and calls it through the
//! generated tonic client. One binary, modules by topic (zero2prod style).

#[path = "../support/mod.rs"]
mod support;

mod helpers;

mod approvals;
mod create_refund;
mod errors;
mod grpc_web;
mod idempotency;
mod list_refunds;
mod operators;
mod restart;
mod surface;
mod tenancy;
mod watch;
