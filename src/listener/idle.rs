//! The idle timeout: a connection on which nothing is read or written for the configured
//! time fails its next read or write with `TimedOut`, which closes it. HTTP/2 keepalive
//! pings are traffic, so an HTTP/2 peer that answers them is never idle; the timeout
//! closes connections left open without a word (HTTP/1.1 keep-alive, half-open sockets).

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::{Instant, Sleep},
};

/// Traffic only notes the time (no timer work per read or write); the timer is moved to
/// `last + timeout` when it fires early.
#[derive(Debug)]
pub struct IdleIo<S> {
    inner: S,
    idle: Option<Idle>,
}

#[derive(Debug)]
struct Idle {
    timeout: Duration,
    last: Instant,
    timer: Pin<Box<Sleep>>,
}

impl<S> IdleIo<S> {
    pub fn new(inner: S, timeout: Option<Duration>) -> Self {
        Self {
            inner,
            idle: timeout.map(|timeout| Idle {
                timeout,
                last: Instant::now(),
                timer: Box::pin(tokio::time::sleep(timeout)),
            }),
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    fn active(&mut self) {
        if let Some(idle) = &mut self.idle {
            idle.last = Instant::now();
        }
    }

    /// On a pending read or write: whether the connection has been idle too long (if not,
    /// the timer is armed to wake this task when it would be).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(idle) = &mut self.idle else {
            return false;
        };
        while idle.timer.as_mut().poll(cx).is_ready() {
            let deadline = idle.last + idle.timeout;
            if deadline <= Instant::now() {
                return true;
            }
            idle.timer.as_mut().reset(deadline);
        }
        false
    }

    /// What a read or write of `inner` gave, as the caller sees it: done notes the traffic;
    /// pending for too long fails with `TimedOut`.
    fn traffic<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match poll {
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
            ready => {
                self.active();
                ready
            }
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle")
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.traffic(cx, poll)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.traffic(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.traffic(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
