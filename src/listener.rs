//! The accept loop both servers take their connections from: TCP, the idle timeout, and
//! TLS (the current certificate of [`Certificates`] for each new connection) when it is on.
//! The handshake runs apart from the loop, so a slow or silent client holds up no one; a
//! connection that fails it is dropped with a debug line (scanners, plaintext clients,
//! clients without a valid certificate under mTLS).

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_util::sync::CancellationToken;
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::tls::Certificates;

mod idle;

use idle::IdleIo;

/// How long a client has to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which listener: the gRPC one asks for client certificates under mTLS.
#[derive(Clone, Copy, Debug)]
pub enum Side {
    Grpc,
    Http,
}

/// An accepted connection, TLS done if TLS is on.
#[derive(Debug)]
pub enum Conn {
    Plain(IdleIo<TcpStream>),
    Tls(Box<TlsStream<IdleIo<TcpStream>>>),
}

/// The connections of one listener, in the order their handshakes finish. For tonic a
/// stream ([`Incoming::into_stream`]); for axum a `Listener`.
#[derive(Debug)]
pub struct Incoming {
    rx: mpsc::Receiver<(Conn, SocketAddr)>,
    local: SocketAddr,
}

/// Starts accepting on `tcp` until `stop`; `idle`: close a connection on which nothing was
/// read or written for that long (`None`: never).
pub fn accept(
    tcp: TcpListener,
    tls: Option<(Arc<Certificates>, Side)>,
    idle: Option<Duration>,
    stop: CancellationToken,
) -> io::Result<Incoming> {
    let local = tcp.local_addr()?;
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let (stream, peer) = tokio::select! {
                () = stop.cancelled() => return,
                accepted = tcp.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors and the like: wait a little, go on.
                        tracing::warn!(error = %err, %local, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let io = IdleIo::new(stream, idle);
            match &tls {
                None => {
                    if tx.send((Conn::Plain(io), peer)).await.is_err() {
                        return;
                    }
                }
                Some((certificates, side)) => {
                    let config = match side {
                        Side::Grpc => certificates.grpc(),
                        Side::Http => certificates.http(),
                    };
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let handshake = TlsAcceptor::from(config).accept(io);
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                            Ok(Ok(tls)) => {
                                let _ = tx.send((Conn::Tls(Box::new(tls)), peer)).await;
                            }
                            Ok(Err(err)) => {
                                tracing::debug!(%peer, error = %err, "TLS handshake failed");
                            }
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    });
                }
            }
        }
    });
    Ok(Incoming { rx, local })
}

impl Incoming {
    /// For `Server::serve_with_incoming_shutdown`.
    pub fn into_stream(self) -> impl futures::Stream<Item = io::Result<Conn>> + Send {
        futures::stream::unfold(self.rx, |mut rx| async move {
            rx.recv().await.map(|(conn, _)| (Ok(conn), rx))
        })
    }
}

impl axum::serve::Listener for Incoming {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        match self.rx.recv().await {
            Some(accepted) => accepted,
            // The loop stopped: so has the server, through its graceful shutdown.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(io) => io.get_ref(),
            Conn::Tls(tls) => tls.get_ref().0.get_ref(),
        }
    }
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.tcp().connect_info()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(io) => Pin::new(io).poll_read(cx, buf),
            Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(io) => Pin::new(io).poll_write(cx, buf),
            Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(io) => io.is_write_vectored(),
            Conn::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(io) => Pin::new(io).poll_flush(cx),
            Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(io) => Pin::new(io).poll_shutdown(cx),
            Conn::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}
