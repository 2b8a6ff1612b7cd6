//! A TCP proxy that can be stopped and started again on the same port: a
//! server that goes away (connections cut, new ones refused) and comes back,
//! as its clients see it.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct Proxy {
    pub port: u16,
    target: String,
    state: Arc<Mutex<State>>,
}

/// The tasks of the current listener and its connections. `generation` moves
/// on at every stop, so that a listener that accepted a connection just as it
/// was stopped drops it instead of serving it through the outage.
#[derive(Default)]
struct State {
    generation: u64,
    tasks: Vec<JoinHandle<()>>,
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `target`.
    pub async fn start(target: &str) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let proxy = Self {
            port: listener.local_addr()?.port(),
            target: target.to_owned(),
            state: Arc::default(),
        };
        proxy.serve(listener);
        Ok(proxy)
    }

    fn serve(&self, listener: TcpListener) {
        let target = self.target.clone();
        let state = self.state.clone();
        let mut guard = lock(&self.state);
        let generation = guard.generation;
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut guard = lock(&state);
                if guard.generation != generation {
                    break;
                }
                let target = target.clone();
                guard.tasks.push(tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                }));
            }
        });
        guard.tasks.push(accept);
    }

    /// Cuts every connection and refuses new ones.
    pub fn stop(&self) {
        let mut guard = lock(&self.state);
        guard.generation += 1;
        for task in guard.tasks.drain(..) {
            task.abort();
        }
    }

    /// Accepts connections again on the same port. The stopped listener is
    /// closed when its aborted task next runs, so the port may take a moment
    /// to become free.
    pub async fn resume(&self) -> io::Result<()> {
        let mut attempts = 0;
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => break listener,
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && attempts < 100 => {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                Err(e) => return Err(e),
            }
        };
        self.serve(listener);
        Ok(())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}
