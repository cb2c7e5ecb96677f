//! Test support. Every in-process test starts its gateway through [`gateway`] (which
//! reaches the simulators through [`sims`]) and builds its requests with [`messages`]; the
//! tests that run the real `refund-gateway` binary use [`process`]; [`postgres`] makes
//! fresh databases; [`logs`] keeps the in-process gateways' log lines. Each test binary uses a part of it.
#![allow(dead_code)]

pub mod gateway;
pub mod logs;
pub mod messages;
pub mod pki;
pub mod postgres;
pub mod process;
pub mod sims;
