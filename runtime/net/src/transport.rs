//! SIP transports: UDP sockets, TCP and TLS listeners and connections (RFC 3261 §18).
//!
//! This is the thin IO shell around the sans-IO core: it turns datagrams and framed stream
//! messages into [`Inbound`] items for the endpoint task, and carries [`Transmit`]s back out.
//! Stream connections are kept in a registry keyed by peer address, so responses and later
//! requests to the same peer reuse the connection it opened; a connection idle for the
//! configured time is closed.

use sma_sip::message::{FramingError, ParseLimits, StreamFramer};
use sma_sip::transaction::Transmit;
use sma_sip::Transport;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::{debug, warn};

/// A listener that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad listener `{spec}`: {why} (expected <udp|tcp|tls>:<address>:<port>, e.g. udp:127.0.0.1:5060 or tcp:[::1]:5060)")]
pub struct ListenSpecError {
    pub spec: String,
    pub why: String,
}

/// One `<transport>:<address>:<port>` listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenSpec {
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl std::str::FromStr for ListenSpec {
    type Err = ListenSpecError;

    fn from_str(spec: &str) -> Result<ListenSpec, ListenSpecError> {
        let bad = |why: &str| ListenSpecError {
            spec: spec.to_owned(),
            why: why.to_owned(),
        };
        let (transport, addr) = spec.split_once(':').ok_or_else(|| bad("no transport"))?;
        let transport = Transport::from_token(transport)
            .ok_or_else(|| bad("transport must be udp, tcp or tls"))?;
        let addr = addr
            .parse()
            .map_err(|_| bad("address is not <ip>:<port>"))?;
        Ok(ListenSpec { transport, addr })
    }
}

impl std::fmt::Display for ListenSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}",
            self.transport.as_str().to_ascii_lowercase(),
            self.addr
        )
    }
}

/// Something that arrived for the endpoint.
#[derive(Debug)]
pub enum Inbound {
    Message {
        bytes: Vec<u8>,
        source: SocketAddr,
        /// The listener's (advertised) address: Contact and Via for dialogs it creates.
        local: SocketAddr,
        transport: Transport,
    },
    /// A stream message over the size limit: answer 513 from its head, then the connection
    /// closes.
    TooLarge {
        head: Vec<u8>,
        size: usize,
        limit: usize,
        source: SocketAddr,
        transport: Transport,
    },
    /// A message could not be sent: no connection to `destination` could be opened, or its
    /// TLS handshake failed. The requests waiting for it fail with `reason`.
    Undeliverable {
        destination: SocketAddr,
        transport: Transport,
        reason: String,
    },
}

/// A bound listener and the address it advertises.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub spec: ListenSpec,
    pub local: SocketAddr,
    pub advertised: SocketAddr,
}

type Registry = Arc<Mutex<HashMap<(Transport, SocketAddr), mpsc::UnboundedSender<Vec<u8>>>>>;

/// The transports of one node.
#[derive(Clone)]
pub struct Transports {
    udp: Vec<(SocketAddr, Arc<UdpSocket>)>,
    connections: Registry,
    inbound: mpsc::Sender<Inbound>,
    limits: ParseLimits,
    idle: Duration,
    /// Advertised address for outbound TCP connections, by family.
    tcp_local: Vec<SocketAddr>,
    /// Advertised addresses of the TLS listeners.
    tls_local: Vec<SocketAddr>,
    /// Opens outbound TLS connections, verifying the peer as the given name (or, without
    /// one, as the name registered for the destination, else its IP address).
    tls_client: Option<(TlsConnector, Option<ServerName<'static>>)>,
    /// The name a destination's certificate must carry (a route's host), by address.
    tls_names: Arc<Mutex<HashMap<SocketAddr, ServerName<'static>>>>,
    /// The certificate chains TLS clients presented, by peer address, while connected.
    peer_certificates: Arc<Mutex<HashMap<SocketAddr, PeerChain>>>,
}

/// A TLS client's certificate chain, its own certificate first.
pub type PeerChain = Arc<[CertificateDer<'static>]>;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot listen on {spec}: {source}")]
    Bind {
        spec: ListenSpec,
        source: std::io::Error,
    },
    #[error("a tls: listener needs a certificate: {0}")]
    Tls(String),
}

fn advertise(local: SocketAddr, advertise: Option<IpAddr>) -> SocketAddr {
    if !local.ip().is_unspecified() {
        return local;
    }
    let ip = advertise.unwrap_or(match local {
        SocketAddr::V4(_) => IpAddr::from([127, 0, 0, 1]),
        SocketAddr::V6(_) => IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1]),
    });
    SocketAddr::new(ip, local.port())
}

impl Transports {
    /// Binds every listener and starts its tasks.
    pub async fn start(
        specs: &[ListenSpec],
        advertised: Option<IpAddr>,
        tls: Option<TlsAcceptor>,
        limits: ParseLimits,
        idle: Duration,
        inbound: mpsc::Sender<Inbound>,
    ) -> Result<(Transports, Vec<Bound>), TransportError> {
        let mut transports = Transports {
            udp: Vec::new(),
            connections: Arc::new(Mutex::new(HashMap::new())),
            inbound,
            limits,
            idle,
            tcp_local: Vec::new(),
            tls_local: Vec::new(),
            tls_client: None,
            tls_names: Arc::default(),
            peer_certificates: Arc::default(),
        };
        let mut bound = Vec::new();
        for spec in specs {
            let bind_err = |source| TransportError::Bind {
                spec: *spec,
                source,
            };
            match spec.transport {
                Transport::Udp => {
                    let socket = Arc::new(UdpSocket::bind(spec.addr).await.map_err(bind_err)?);
                    let local = socket.local_addr().map_err(bind_err)?;
                    let adv = advertise(local, advertised);
                    transports.udp.push((adv, socket.clone()));
                    tokio::spawn(udp_receive(socket, adv, transports.inbound.clone()));
                    bound.push(Bound {
                        spec: *spec,
                        local,
                        advertised: adv,
                    });
                }
                Transport::Tcp | Transport::Tls => {
                    let acceptor =
                        match spec.transport {
                            Transport::Tls => Some(tls.clone().ok_or_else(|| {
                                TransportError::Tls("no TLS configuration".into())
                            })?),
                            _ => None,
                        };
                    let listener = TcpListener::bind(spec.addr).await.map_err(bind_err)?;
                    let local = listener.local_addr().map_err(bind_err)?;
                    let adv = advertise(local, advertised);
                    if spec.transport == Transport::Tcp {
                        transports.tcp_local.push(adv);
                    } else {
                        transports.tls_local.push(adv);
                    }
                    tokio::spawn(accept_loop(
                        listener,
                        spec.transport,
                        adv,
                        acceptor,
                        transports.clone(),
                    ));
                    bound.push(Bound {
                        spec: *spec,
                        local,
                        advertised: adv,
                    });
                }
            }
        }
        Ok((transports, bound))
    }

    /// The address this node sends `transport` from towards an IPv4 (or IPv6) peer: what
    /// goes in the Via and Contact of a request it originates. `None` when it has no listener
    /// of that transport.
    pub fn local_address(&self, transport: Transport, ipv4: bool) -> Option<SocketAddr> {
        let pick = |list: &[SocketAddr]| {
            list.iter()
                .copied()
                .find(|a| a.is_ipv4() == ipv4)
                .or_else(|| list.first().copied())
        };
        match transport {
            Transport::Udp => pick(&self.udp.iter().map(|(a, _)| *a).collect::<Vec<_>>()),
            Transport::Tcp => pick(&self.tcp_local),
            Transport::Tls => pick(&self.tls_local),
        }
    }

    /// Lets `send` open TLS connections, verifying the peer as `name`.
    pub fn set_tls_client(&mut self, connector: TlsConnector, name: ServerName<'static>) {
        self.tls_client = Some((connector, Some(name)));
    }

    /// Lets `send` open TLS connections to any destination, verifying each as the name given
    /// to [`Transports::expect_tls_name`] for it, else as its IP address.
    pub fn set_tls_connector(&mut self, connector: TlsConnector) {
        self.tls_client = Some((connector, None));
    }

    /// The name `destination`'s certificate must carry when a TLS connection is opened to it
    /// (the host of the route or carrier it was resolved from).
    pub fn expect_tls_name(&self, destination: SocketAddr, name: ServerName<'static>) {
        if let Ok(mut names) = self.tls_names.lock() {
            names.insert(destination, name);
        }
    }

    /// Sends a message. UDP goes out of the socket of the destination's address family; TCP
    /// and TLS reuse the peer's connection, and TCP opens one when there is none.
    pub fn send(&self, transmit: Transmit) {
        match transmit.transport {
            Transport::Udp => {
                let socket = self
                    .udp
                    .iter()
                    .find(|(local, _)| local.is_ipv4() == transmit.destination.is_ipv4())
                    .or_else(|| self.udp.first());
                match socket {
                    Some((_, socket)) => {
                        if let Err(e) = socket.try_send_to(&transmit.bytes, transmit.destination) {
                            debug!(destination = %transmit.destination, error = %e, "UDP send failed");
                        }
                    }
                    None => {
                        warn!(destination = %transmit.destination, "no UDP listener to send from")
                    }
                }
            }
            Transport::Tcp | Transport::Tls => {
                let key = (transmit.transport, transmit.destination);
                let existing = self
                    .connections
                    .lock()
                    .ok()
                    .and_then(|map| map.get(&key).cloned());
                match existing {
                    Some(tx) if tx.send(transmit.bytes.clone()).is_ok() => {}
                    _ if transmit.transport == Transport::Tcp || self.tls_client.is_some() => {
                        let this = self.clone();
                        tokio::spawn(async move { this.connect_and_send(transmit).await });
                    }
                    _ => warn!(
                        destination = %transmit.destination,
                        "no TLS connection to this peer; outbound TLS connections are not opened"
                    ),
                }
            }
        }
    }

    async fn connect_and_send(self, transmit: Transmit) {
        let connect = tokio::time::timeout(
            Duration::from_secs(5),
            TcpStream::connect(transmit.destination),
        )
        .await;
        match connect {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                let local = self
                    .tcp_local
                    .iter()
                    .copied()
                    .find(|a| a.is_ipv4() == transmit.destination.is_ipv4())
                    .or_else(|| stream.local_addr().ok())
                    .unwrap_or(transmit.destination);
                let tx = match (&self.tls_client, transmit.transport) {
                    (Some((connector, name)), Transport::Tls) => {
                        let name = name
                            .clone()
                            .or_else(|| {
                                self.tls_names
                                    .lock()
                                    .ok()
                                    .and_then(|n| n.get(&transmit.destination).cloned())
                            })
                            .unwrap_or_else(|| {
                                ServerName::IpAddress(transmit.destination.ip().into())
                            });
                        match connector.connect(name, stream).await {
                            Ok(tls) => {
                                self.register(tls, transmit.destination, local, Transport::Tls)
                            }
                            Err(e) => {
                                warn!(destination = %transmit.destination, error = %e, "TLS handshake failed");
                                self.undeliverable(&transmit, format!("TLS handshake failed: {e}"))
                                    .await;
                                return;
                            }
                        }
                    }
                    _ => self.register(stream, transmit.destination, local, Transport::Tcp),
                };
                let _ = tx.send(transmit.bytes);
            }
            Ok(Err(e)) => {
                debug!(destination = %transmit.destination, error = %e, "TCP connect failed");
                self.undeliverable(
                    &transmit,
                    format!("{} connection failed: {e}", transmit.transport),
                )
                .await;
            }
            Err(_) => {
                debug!(destination = %transmit.destination, "TCP connect timed out");
                self.undeliverable(
                    &transmit,
                    format!("{} connection not accepted within 5 s", transmit.transport),
                )
                .await;
            }
        }
    }

    /// Tells the endpoint that `transmit` could not be sent, and why.
    async fn undeliverable(&self, transmit: &Transmit, reason: String) {
        let _ = self
            .inbound
            .send(Inbound::Undeliverable {
                destination: transmit.destination,
                transport: transmit.transport,
                reason,
            })
            .await;
    }

    /// The certificate chain the TLS client at `peer` presented, if it is connected and sent
    /// one.
    pub fn peer_certificates(&self, peer: SocketAddr) -> Option<PeerChain> {
        self.peer_certificates
            .lock()
            .ok()
            .and_then(|map| map.get(&peer).cloned())
    }

    /// Starts the reader and writer of a connection and records it.
    fn register<S>(
        &self,
        stream: S,
        peer: SocketAddr,
        local: SocketAddr,
        transport: Transport,
    ) -> mpsc::UnboundedSender<Vec<u8>>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut map) = self.connections.lock() {
            map.insert((transport, peer), tx.clone());
        }
        let this = self.clone();
        tokio::spawn(async move {
            this.connection(stream, peer, local, transport, rx).await;
            if let Ok(mut map) = this.connections.lock() {
                map.remove(&(transport, peer));
            }
            if transport == Transport::Tls {
                if let Ok(mut map) = this.peer_certificates.lock() {
                    map.remove(&peer);
                }
            }
            debug!(%peer, %transport, "connection closed");
        });
        tx
    }

    async fn connection<S>(
        &self,
        stream: S,
        peer: SocketAddr,
        local: SocketAddr,
        transport: Transport,
        mut outgoing: mpsc::UnboundedReceiver<Vec<u8>>,
    ) where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let mut framer = StreamFramer::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            tokio::select! {
                read = tokio::time::timeout(self.idle, reader.read(&mut buf)) => {
                    let n = match read {
                        Ok(Ok(0)) | Ok(Err(_)) => return,
                        Ok(Ok(n)) => n,
                        Err(_) => {
                            debug!(%peer, "closing idle connection");
                            return;
                        }
                    };
                    framer.push(&buf[..n]);
                    while let Some(frame) = framer.next_frame(&self.limits) {
                        let item = match frame {
                            Ok(bytes) => Inbound::Message { bytes, source: peer, local, transport },
                            Err(FramingError::TooLarge { size, limit, head }) => {
                                let _ = self.inbound.send(Inbound::TooLarge { head, size, limit, source: peer, transport }).await;
                                // Let the 513 go out before the connection closes.
                                tokio::time::sleep(Duration::from_millis(100)).await;
                                while let Ok(bytes) = outgoing.try_recv() {
                                    let _ = writer.write_all(&bytes).await;
                                }
                                return;
                            }
                            Err(e) => {
                                warn!(%peer, error = %e, "unframeable stream; closing");
                                return;
                            }
                        };
                        if self.inbound.send(item).await.is_err() {
                            return;
                        }
                    }
                }
                bytes = outgoing.recv() => {
                    let Some(bytes) = bytes else { return };
                    if writer.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

async fn udp_receive(socket: Arc<UdpSocket>, local: SocketAddr, inbound: mpsc::Sender<Inbound>) {
    // One byte over the largest datagram, so an oversize one is seen as such.
    let mut buf = vec![0u8; 65_536];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, source)) => {
                let item = Inbound::Message {
                    bytes: buf[..n].to_vec(),
                    source,
                    local,
                    transport: Transport::Udp,
                };
                if inbound.send(item).await.is_err() {
                    return;
                }
            }
            // ICMP errors surface here on some systems (ECONNREFUSED after a send): keep going.
            Err(e) => debug!(error = %e, "UDP receive error"),
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    transport: Transport,
    local: SocketAddr,
    tls: Option<TlsAcceptor>,
    transports: Transports,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match &tls {
            None => {
                transports.register(stream, peer, local, transport);
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let transports = transports.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls_stream)) => {
                            if let Some(chain) = tls_stream.get_ref().1.peer_certificates() {
                                if let Ok(mut map) = transports.peer_certificates.lock() {
                                    map.insert(peer, chain.to_vec().into());
                                }
                            }
                            transports.register(tls_stream, peer, local, transport);
                        }
                        Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}
