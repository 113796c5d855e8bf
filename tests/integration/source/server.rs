//! A tiny HTTP/1.1 server on 127.0.0.1 that serves a fixed number of connections, then exits.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

#[derive(Clone)]
pub enum Reply {
    /// 200 with Content-Length.
    Ok(Vec<u8>),
    /// 200 with the full Content-Length, but the connection closes after `cut` bytes.
    CloseAfter(Vec<u8>, usize),
    /// 200 announcing `Content-Length: .1`, then `.0` and the connection closes.
    Announce(Vec<u8>, u64),
    /// 302 to another path.
    Redirect(&'static str),
}

/// Serves `routes` (404 for any other path) for exactly `max_requests` connections, then exits.
pub struct Server {
    base: String,
    requests: Arc<AtomicUsize>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(routes: Vec<(&'static str, Reply)>, max_requests: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        let routes: HashMap<_, _> = routes.into_iter().collect();
        let thread = thread::spawn(move || {
            for _ in 0..max_requests {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                // A client that hangs up early is not the server's problem.
                let _ = serve(stream, &routes);
            }
        });
        Self {
            base,
            requests,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Waits until all `max_requests` connections have been served.
    pub fn join(mut self) {
        self.thread.take().unwrap().join().unwrap();
    }
}

fn serve(stream: TcpStream, routes: &HashMap<&str, Reply>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let mut out = stream;
    let head = |status: &str, len: usize, extra: &str| {
        format!("HTTP/1.1 {status}\r\nContent-Length: {len}\r\nConnection: close\r\n{extra}\r\n")
    };
    match routes.get(path) {
        Some(Reply::Ok(body)) => {
            out.write_all(head("200 OK", body.len(), "").as_bytes())?;
            out.write_all(body)?;
        }
        Some(Reply::CloseAfter(body, cut)) => {
            out.write_all(head("200 OK", body.len(), "").as_bytes())?;
            out.write_all(&body[..*cut])?;
        }
        Some(Reply::Announce(body, len)) => {
            let h =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n");
            out.write_all(h.as_bytes())?;
            out.write_all(body)?;
        }
        Some(Reply::Redirect(to)) => {
            let location = format!("Location: {to}\r\n");
            out.write_all(head("302 Found", 0, &location).as_bytes())?;
        }
        None => {
            out.write_all(head("404 Not Found", 9, "").as_bytes())?;
            out.write_all(b"not found")?;
        }
    }
    out.flush()?;
    out.shutdown(std::net::Shutdown::Both)
}
