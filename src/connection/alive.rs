//! Ends every wait on a connection once the connection is gone.
//!
//! When an SSH session ends (the server vanished, or stopped answering keepalives), russh
//! wakes a channel's reader but not a writer waiting for window space: a target that died in
//! the middle of an upload kept kiln waiting forever. So the streams and commands of an SSH
//! connection are raced against the end of its session: [`Lifeline`] lives as long as the
//! session (russh drops its handler, which holds it, when the session ends), and [`Alive`]
//! tells every waiter when it is gone.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

/// Held for as long as the connection lives; dropping it ends every [`Alive`] wait.
pub struct Lifeline {
    _sender: watch::Sender<()>,
}

/// Watches a [`Lifeline`].
#[derive(Clone)]
pub struct Alive {
    receiver: watch::Receiver<()>,
}

pub fn lifeline() -> (Lifeline, Alive) {
    let (sender, receiver) = watch::channel(());
    (Lifeline { _sender: sender }, Alive { receiver })
}

impl Alive {
    /// Completes when the connection is gone (nothing is ever sent: only the drop counts).
    pub fn ended(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut receiver = self.receiver.clone();
        async move { while receiver.changed().await.is_ok() {} }
    }

    /// `stream`, failing its reads and writes once the connection is gone.
    pub fn guard<S>(&self, stream: S, what: String) -> Guarded<S> {
        Guarded {
            inner: stream,
            ended: Box::pin(self.ended()),
            gone: false,
            what,
        }
    }
}

/// A stream whose pending reads and writes fail when its connection ends.
pub struct Guarded<S> {
    inner: S,
    ended: Pin<Box<dyn Future<Output = ()> + Send>>,
    gone: bool,
    what: String,
}

impl<S> Guarded<S> {
    /// Called when the inner stream is not ready: an error if the connection is gone (the
    /// poll also registers the waker, so a wait ends when the connection does).
    fn gone<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if !self.gone && self.ended.as_mut().poll(cx).is_ready() {
            self.gone = true;
        }
        if self.gone {
            Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                format!("the connection to {} was lost", self.what),
            )))
        } else {
            Poll::Pending
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Pending => self.gone(cx),
            ready => ready,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, data) {
            Poll::Pending => self.gone(cx),
            ready => ready,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.gone(cx),
            ready => ready,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_shutdown(cx) {
            Poll::Pending => self.gone(cx),
            ready => ready,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A writer stuck for good (a full window that no one will open) fails once the
    /// connection's lifeline is dropped.
    #[tokio::test]
    async fn a_stuck_write_ends_with_the_connection() {
        let (lifeline, alive) = lifeline();
        let (stuck, _peer) = tokio::io::duplex(4);
        let mut stream = alive.guard(stuck, "web1".into());
        let writing = tokio::spawn(async move { stream.write_all(&[0u8; 64]).await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            !writing.is_finished(),
            "the write waits while the peer lives"
        );
        drop(lifeline);
        let result = tokio::time::timeout(std::time::Duration::from_secs(5), writing)
            .await
            .expect("the write ended")
            .unwrap();
        let error = result.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionAborted);
        assert!(error.to_string().contains("web1"), "{error}");
    }
}
