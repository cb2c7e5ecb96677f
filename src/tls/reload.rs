//! Certificate rotation: the files are read every [`POLL`]; when their bytes changed and
//! they load (PEM, key matching the certificate, not expired) new connections get them.
//! A pair that does not load is refused with one log line and the previous one stays,
//! so a rotation written file by file (the certificate first, the key a moment later) is
//! taken once both are in place. Open connections are never touched.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use super::{Certificates, Files, build};

/// How often the files are read: a rotated certificate reaches new connections within this.
pub const POLL: Duration = Duration::from_secs(5);

/// Watches the files until `stop`.
pub async fn watch(certificates: Arc<Certificates>, every: Duration, stop: CancellationToken) {
    // The last bytes refused, so that a bad pair is reported once, not at every poll.
    let mut refused: Option<Files> = None;
    let mut unreadable: Option<String> = None;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let files = match Files::read(&certificates.options) {
            Ok(files) => {
                unreadable = None;
                files
            }
            Err(err) => {
                // Mid-rotation a file may be missing for a moment: said once, old pair kept.
                if unreadable.as_ref() != Some(&err) {
                    tracing::warn!(error = %err, "TLS files not reloaded; keeping the current certificate");
                    unreadable = Some(err);
                }
                continue;
            }
        };
        if files == certificates.current.load().files || refused.as_ref() == Some(&files) {
            continue;
        }
        match build(&certificates.options, &files) {
            Ok(loaded) => {
                tracing::info!(certificate = %loaded.summary, "TLS certificate reloaded; new connections use it");
                certificates.current.store(Arc::new(loaded));
                refused = None;
            }
            Err(err) => {
                tracing::warn!(error = %err, "TLS files changed but do not load; keeping the current certificate");
                refused = Some(files);
            }
        }
    }
}
