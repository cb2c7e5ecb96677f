//! refund-gateway: one provider-neutral gRPC API to refund payments taken by different payment
//! providers, with a durable record of every refund, follow-up to each one's final outcome,
//! and live status streams.
//!
//! # Layout
//!
//! Data flows one way: the edge ([`grpc`], [`http`]) turns requests into domain values and
//! calls the application service ([`refunds`]), which uses the [`store`] and the provider
//! accounts ([`providers`]). `docs/ARCHITECTURE.md` follows one CreateRefund through the files.
//!
//! - [`domain`]: money, refunds, payments, the status machine and the caller-facing error.
//!   No I/O, no generated types.
//! - [`pb`]: the generated `refunds.v1` types; [`grpc`]: the thin gRPC handlers, the
//!   conversions, the error mapping, the RPC layer (span and metrics) and the API-key check.
//! - [`http`]: health, readiness, metrics and the webhook routes.
//! - [`refunds`]: the service. `refunds.rs` is a facade whose methods chain stages, one file
//!   each (validate, claim, reserve, submit, record; reconcile, webhooks, list, payments,
//!   watch); every change of a stored refund and every submission goes through its one
//!   writer (`refunds/writer.rs`).
//! - [`worker`]: the durable follow-up loop that leases due refunds and has them checked.
//! - [`events`]: the live event bus behind the watch streams.
//! - [`store`]: the durable store behind the `RefundStore` trait (SQLite or PostgreSQL).
//! - [`providers`]: the `Provider` trait, the registry of providers, the one client (tower
//!   stack) per account, and one module per provider, each with the same files.
//! - [`auth`]: tenants and their API keys, the table a reload swaps; [`limits`]: each
//!   tenant's call rate and open watch streams.
//! - [`listener`]: the accept loop both servers take connections from (idle timeout, TLS);
//!   [`tls`]: the certificates, checked at start and read again when their files change.
//! - [`config`]: the configuration file and its environment overrides; it knows no other
//!   part. [`app`] turns it into each part's options and runs everything.
//! - [`metrics`], [`telemetry`], [`cli`]: metric helpers, logging set-up, the command line.
//! - The provider simulators for tests and sandbox mode are the `simulators` crate
//!   (`simulators/`), written from the providers' documentation, not from [`providers`].

#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod http;
pub mod limits;
pub mod listener;
pub mod metrics;
pub mod pb;
pub mod providers;
pub mod refunds;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod worker;
