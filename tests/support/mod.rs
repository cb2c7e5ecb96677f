//! Test support. Every in-process test starts its gateway through [`gateway`] (and the
//! harness reaches the simulators through [`sims`]); the tests that run the real
//! `refund-gateway` binary use [`process`]; [`postgres`] makes fresh databases. Each test
//! binary uses a part of it.
#![allow(dead_code)]

pub mod gateway;
pub mod postgres;
pub mod process;
pub mod sims;
