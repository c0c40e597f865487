//! Many clients that stop reading: a stalled stream must hold no thread, and aggregates, new
//! streams and small answers must go on being served (README "Limits and known gaps").
//!
//! The real binary runs in its own process so its threads can be counted from `/proc`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Clients that read the head and 64 KiB of a 64 MiB answer and then stop reading.
const STALLED: usize = 400;

/// Side of the sparse square `<f4` array: 4096² × 4 bytes = 64 MiB, far more than the socket
/// buffers hold, so every stalled stream stays unfinished.
const SIDE: u64 = 4096;

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_arrayd"))
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--log", "info,arrayd::request=warn"])
        // The send timeout stays out of the way: the clients here stall on purpose.
        .args(["--send-timeout-secs", "600"])
        .arg("--data-dir")
        .arg(data)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let v: Value = serde_json::from_str(&line).unwrap_or_default();
            if v["fields"]["message"] == "serving" {
                let _ = tx.send(v["fields"]["addr"].as_str().unwrap_or("").to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("no serving line");
    Server { child, addr }
}

fn threads(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

/// Opens a connection, asks for the whole array as `bin`, reads until 64 KiB of body arrived,
/// and returns the connection unread from then on.
async fn stall(addr: &str) -> TcpStream {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let request = "GET /v1/datasets/big/data?format=bin HTTP/1.1\r\nHost: t\r\n\r\n";
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0; 16 * 1024];
    while got.len() < 64 * 1024 + 200 {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "stream ended early");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200"));
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_streams_hold_no_thread_and_block_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.npy");
    let header =
        arrayd::npy::write_header(arrayd::dtype::DType::parse("<f4").unwrap(), &[SIDE, SIDE]);
    std::fs::write(&path, &header).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(header.len() as u64 + SIDE * SIDE * 4)
        .unwrap();
    let server = start(dir.path());
    let pid = server.child.id();
    let idle = threads(pid);

    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        stalled.push(stall(&server.addr).await);
    }
    // Let every producer settle into its stall.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let busy = threads(pid);
    println!("server threads: idle {idle}, with {STALLED} stalled streams {busy}");
    assert!(
        busy <= idle + 20,
        "{STALLED} stalled streams took {} threads",
        busy - idle
    );

    let client = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    let start = Instant::now();
    let stats: Value = client
        .get(format!("{base}/v1/datasets/big/stats?ops=sum&slice=0:64"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("/stats not answered while streams stall")
        .json()
        .await
        .unwrap();
    assert_eq!(stats["sum"], 0.0, "{stats}");
    let mut fresh = client
        .get(format!(
            "{base}/v1/datasets/big/data?format=bin&slice=0:256"
        ))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("a new stream got no head while streams stall");
    let mut body = 0;
    while let Some(chunk) = fresh.chunk().await.unwrap() {
        body += chunk.len();
    }
    assert_eq!(body as u64, 256 * SIDE * 4);
    println!(
        "/stats and a new 4 MiB stream answered in {:?} beside {STALLED} stalled streams",
        start.elapsed()
    );
    drop(stalled);
}
