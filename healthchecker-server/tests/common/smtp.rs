//! A real SMTP server for tests: mailin-embedded on 127.0.0.1, every accepted message captured.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mailin_embedded::response::{NO_MAILBOX, OK};
use mailin_embedded::{Handler, Response, Server, SslConfig};
use tokio::sync::mpsc;

/// One message as the SMTP server accepted it.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    pub data: String,
    pub at: Instant,
}

impl Received {
    /// The header section, folded lines joined.
    pub fn headers(&self) -> Vec<(String, String)> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                // RFC 5322 unfolding: the line break goes, the white space stays
                if let Some(last) = headers.last_mut() {
                    last.1.push_str(line);
                }
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.to_owned(), value.trim().to_owned()));
            }
        }
        headers
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers()
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    pub fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    /// What the mail tells, one line per alert without the `[healthchecker] ` tag, e.g.
    /// `app-10 is UNHEALTHY`: its subject, or for a digest (several alerts to one address within
    /// a short time) each alert's `==== ... ====` heading in the body.
    pub fn headlines(&self) -> Vec<String> {
        let body = self.body();
        let digest: Vec<String> = body
            .lines()
            .filter_map(|line| line.strip_prefix("==== ")?.strip_suffix(" ===="))
            .map(str::to_owned)
            .collect();
        if digest.is_empty() {
            let subject = self.subject();
            vec![
                subject
                    .strip_prefix("[healthchecker] ")
                    .unwrap_or(&subject)
                    .to_owned(),
            ]
        } else {
            digest
        }
    }

    /// The body, decoded when it is quoted-printable, with `\n` line ends.
    pub fn body(&self) -> String {
        let raw = self
            .data
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        let qp = self
            .header("Content-Transfer-Encoding")
            .is_some_and(|cte| cte.eq_ignore_ascii_case("quoted-printable"));
        let text = if qp { decode_qp(&raw) } else { raw };
        text.replace("\r\n", "\n")
    }
}

/// Quoted-printable (RFC 2045) decoding: soft line breaks and `=XX`.
fn decode_qp(text: &str) -> String {
    let bytes = text.replace("=\r\n", "").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The SMTP session handler: records every accepted message; answers 550 to every recipient
/// when `reject`.
#[derive(Clone)]
struct Capture {
    sink: mpsc::UnboundedSender<Received>,
    attempts: Arc<AtomicUsize>,
    reject: bool,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Capture {
    fn rcpt(&mut self, _to: &str) -> Response {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.reject { NO_MAILBOX } else { OK }
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.to = to.to_vec();
        self.data.clear();
        OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let _ = self.sink.send(Received {
            to: self.to.clone(),
            data: String::from_utf8_lossy(&self.data).into_owned(),
            at: Instant::now(),
        });
        OK
    }
}

/// A real SMTP server on 127.0.0.1 that runs until the test process ends.
pub struct Smtp {
    pub port: u16,
    mail: mpsc::UnboundedReceiver<Received>,
    pub attempts: Arc<AtomicUsize>,
}

impl Smtp {
    pub fn start() -> Smtp {
        Smtp::serve(TcpListener::bind("127.0.0.1:0").expect("bind"), false)
    }

    pub fn serve(listener: TcpListener, reject: bool) -> Smtp {
        let port = listener.local_addr().expect("address").port();
        let (sink, mail) = mpsc::unbounded_channel();
        let attempts = Arc::new(AtomicUsize::new(0));
        let handler = Capture {
            sink,
            attempts: Arc::clone(&attempts),
            reject,
            to: Vec::new(),
            data: Vec::new(),
        };
        let mut server = Server::new(handler);
        server
            .with_name("smtp.test")
            // a connection holds a thread until it closes, and the servers under test keep up
            // to four pooled ones open (a restarted server opens four more before the old ones
            // time out): room for several
            .with_num_threads(16)
            .with_ssl(SslConfig::None)
            .expect("no TLS")
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            // serve() runs for ever; its error is not Send, so it is dropped here.
            let _ = server.serve().map_err(|error| error.to_string());
        });
        Smtp {
            port,
            mail,
            attempts,
        }
    }

    /// The next accepted message, within `within`.
    pub async fn next(&mut self, within: Duration) -> Received {
        tokio::time::timeout(within, self.mail.recv())
            .await
            .expect("a mail arrives in time")
            .expect("server running")
    }

    /// Asserts that no message arrives within `wait`.
    pub async fn none_within(&mut self, wait: Duration) {
        if let Ok(Some(mail)) = tokio::time::timeout(wait, self.mail.recv()).await {
            panic!("unexpected mail: {}", mail.subject());
        }
    }

    /// Every message accepted so far that nobody took yet, without waiting.
    pub fn drain(&mut self) -> Vec<Received> {
        let mut all = Vec::new();
        while let Ok(mail) = self.mail.try_recv() {
            all.push(mail);
        }
        all
    }
}

/// A relay that is down: its port is taken (so nobody else gets it) and every connection is
/// closed at once, before the greeting. [`Outage::end`] hands the same listener to a real server.
pub struct Outage {
    /// The relay's port.
    pub port: u16,
    listener: TcpListener,
    over: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Outage {
    pub fn start() -> Outage {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let over = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let refusing = listener.try_clone().expect("clone the listener");
        let thread = {
            let over = Arc::clone(&over);
            std::thread::spawn(move || {
                for connection in refusing.incoming() {
                    drop(connection);
                    if over.load(Ordering::SeqCst) {
                        return;
                    }
                }
            })
        };
        Outage {
            port,
            listener,
            over,
            thread,
        }
    }

    /// The relay is back: a real SMTP server on the same port.
    pub fn end(self) -> Smtp {
        self.over.store(true, Ordering::SeqCst);
        // Wakes the accepting thread so that it sees the end.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        self.thread.join().expect("the refusing thread ends");
        Smtp::serve(self.listener, false)
    }
}

/// The mails by app and what they say (the subject after `[healthchecker] <app> `, e.g.
/// `is UNHEALTHY`): their Message-IDs.
pub fn tally(mails: &[Received]) -> HashMap<(String, String), Vec<String>> {
    let mut tally: HashMap<(String, String), Vec<String>> = HashMap::new();
    for mail in mails {
        let subject = mail.subject();
        let rest = subject.strip_prefix("[healthchecker] ").unwrap_or(&subject);
        let (app, what) = rest.split_once(' ').unwrap_or((rest, ""));
        tally
            .entry((app.to_owned(), what.to_owned()))
            .or_default()
            .push(mail.header("Message-ID").unwrap_or_default());
    }
    tally
}
