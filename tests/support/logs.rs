//! The in-process gateways' log lines, kept so a test can assert what was (or was not)
//! logged. One global subscriber per test binary (the first gateway installs it): every line
//! goes to stderr as before and into a bounded buffer.

use std::{
    io::Write,
    sync::{Mutex, OnceLock},
};

use tracing_subscriber::{EnvFilter, fmt::MakeWriter};

/// The buffer keeps at most this many bytes (the oldest half goes when it is full).
const MAX_BYTES: usize = 32 * 1024 * 1024;

static LINES: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// Installs the capturing subscriber, once. Returns whether lines are captured (false when
/// something else installed a global subscriber first).
pub fn install() -> bool {
    *INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new(
                "info,sqlx=warn,h2=warn,hyper=warn,tower=warn",
            ))
            .with_ansi(false)
            .with_writer(Tee)
            .finish();
        tracing::subscriber::set_global_default(subscriber).is_ok()
    })
}

/// Every line captured so far.
pub fn captured() -> String {
    String::from_utf8_lossy(&LINES.lock().unwrap()).into_owned()
}

#[derive(Clone, Copy)]
struct Tee;

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        let mut lines = LINES.lock().unwrap();
        if lines.len() + buf.len() > MAX_BYTES {
            let half = lines.len() / 2;
            lines.drain(..half);
        }
        lines.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Tee {
    type Writer = Tee;

    fn make_writer(&'a self) -> Tee {
        Tee
    }
}
