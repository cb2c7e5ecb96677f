//! The store contract: what every `RefundStore` backend must do, written once as generic async
//! functions over `Arc<dyn RefundStore>` (or over a [`Backend`] when the test has to close and
//! reopen the database), then instantiated per backend by `contract_suite!`
//! (suite.rs) in `sqlite` and `postgres`. The generic tests live in topic files: actors (who
//! made each change; refunds waiting for approval), events, guard (the over-refund guard),
//! idempotency, listing, reopen. `migrations` upgrades a store written by an earlier version,
//! on both backends.
//!
//! Adding a backend means one constructor in backends.rs and one more file with its
//! `contract_suite!` line. Tests that look inside the SQLite file live in `sqlite_only`; tests of what only
//! PostgreSQL promises (several replicas on one database, a server that goes away) in
//! `postgres_only` and `postgres_outages`.
//!
//! Every test runs on its own fresh database, so counts and sequences are exact. All use the
//! multi-thread runtime: the races need real parallelism, and one flavor keeps it simple.
//!
//! The PostgreSQL tests run against `DATABASE_URL` when it is set, otherwise against a
//! throwaway server this test binary starts itself from the installed PostgreSQL binaries
//! (tests/support/postgres.rs): each test creates its own database
//! `refund_gateway_test_<uuid>` there and drops it afterwards. Without the binaries they fail
//! with one line saying how to install them; they never pass silently.

#[path = "../support/mod.rs"]
mod support;

#[macro_use]
mod suite;

mod backends;
mod fixtures;

mod actors;
mod events;
mod guard;
mod idempotency;
mod listing;
mod migrations;
mod reopen;

mod postgres;
mod sqlite;

mod postgres_only;
mod postgres_outages;
mod sqlite_only;
