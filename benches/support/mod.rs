//! What the benches that run a real server share: a free port, and sesame
//! started on a configuration file. Include it with
//! `#[path = "support/mod.rs"] mod support;`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start `bin serve -c cfg`, its warnings on this stderr; returns once it listens.
pub fn serve(bin: &str, cfg: &std::path::Path) -> Child {
    let mut child = Command::new(bin)
        .args(["serve", "-c"])
        .arg(cfg)
        .env("SESAME_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.starts_with("sesame listening") => break,
            Some(_) => continue,
            None => panic!("sesame exited before listening"),
        }
    }
    std::thread::spawn(move || for _ in lines {});
    child
}
