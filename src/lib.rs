//! refund-gateway: one provider-neutral gRPC API to refund payments taken by different payment
//! providers, with a durable record of every refund, follow-up to each one's final outcome,
//! and live status streams.
//!
//! # Layout
//!
//! - [`domain`]: money, refunds, payments, the status machine and the caller-facing error.
//!   No I/O, no generated types.
//! - [`pb`]: the generated `refunds.v1` types; [`grpc`] turns them into domain calls.
//! - [`store`]: the durable store behind the `RefundStore` trait (SQLite or PostgreSQL).
//! - [`providers`]: the `Provider` trait, one module per provider, the account registry.
//! - the provider simulators for tests and sandbox mode are the `simulators` crate
//!   (`simulators/`), written from the providers' documentation, not from [`providers`].
//! - [`config`]: the configuration file and its environment overrides.

#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod pb;
pub mod providers;
pub mod refunds;
pub mod store;
pub mod telemetry;
pub mod worker;
