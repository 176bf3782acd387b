//! A real SMTP server on loopback (mailin-embedded) that notes when each mail was accepted.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use mailin_embedded::response::OK;
use mailin_embedded::{Handler, Response, Server, SslConfig};

/// A mail as accepted: its subject and when the SMTP server took it (end of DATA).
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The `Subject` header.
    pub subject: String,
    /// When the server answered the end of DATA.
    pub at: Instant,
}

/// Every mail accepted so far.
pub type Mailbox = Arc<Mutex<Vec<Accepted>>>;

#[derive(Clone)]
struct Capture {
    mailbox: Mailbox,
    data: Vec<u8>,
}

impl Handler for Capture {
    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        _to: &[String],
    ) -> Response {
        self.data.clear();
        OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let at = Instant::now();
        let text = String::from_utf8_lossy(&self.data);
        let head = text.split("\r\n\r\n").next().unwrap_or_default();
        let mut subject = String::new();
        let mut in_subject = false;
        for line in head.split("\r\n") {
            if in_subject && line.starts_with([' ', '\t']) {
                subject.push_str(line.trim_start());
                continue;
            }
            in_subject = false;
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("subject")
            {
                subject = value.trim().to_owned();
                in_subject = true;
            }
        }
        self.mailbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Accepted { subject, at });
        OK
    }
}

/// Starts the SMTP server on 127.0.0.1 (it runs until the process ends); returns its port.
///
/// # Errors
///
/// When the port cannot be bound.
pub fn start(mailbox: Mailbox) -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let mut server = Server::new(Capture {
        mailbox,
        data: Vec::new(),
    });
    server
        .with_name("smtp.bench.test")
        .with_ssl(SslConfig::None)
        .map_err(|error| anyhow::anyhow!("SMTP server: {error}"))?
        .with_tcp_listener(listener);
    std::thread::Builder::new()
        .name("bench-smtp".to_owned())
        .spawn(move || {
            // serve() runs for ever; its error is not Send, so it is dropped here.
            let _ = server.serve().map_err(|error| error.to_string());
        })?;
    Ok(port)
}
