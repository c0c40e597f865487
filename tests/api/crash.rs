//! `kill -9` of the real binary in the middle of registrations and deletions: what was
//! acknowledged survives the restart, what was not is either whole or absent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{f32_bytes, write_npy};

/// Requests the client keeps in flight.
const IN_FLIGHT: usize = 4;

/// What the model knows of a registered name.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Acknowledged registered (and not acknowledged deleted).
    Present,
    /// An unacknowledged register or delete: either way, but whole.
    Either,
}

/// A small seeded xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Register,
    Delete,
}

#[derive(Debug)]
struct Record {
    op: Op,
    name: String,
    acked: bool,
}

/// The binary on `data`/`state`, and its address once it logged "serving".
fn start(data: &Path, state: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_arrayd"))
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .arg("--data-dir")
        .arg(data)
        .arg("--state-dir")
        .arg(state)
        .env_remove("ARRAYD_READ_TOKEN")
        .env("ARRAYD_ADMIN_TOKEN", "adm")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    // Drains stderr for the child's whole life, so a full pipe never blocks it.
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut sent = false;
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if !sent {
                let v: Value = serde_json::from_str(&line).unwrap_or_default();
                if v["fields"]["message"] == "serving" {
                    let _ = tx.send(v["fields"]["addr"].as_str().unwrap_or("").to_owned());
                    sent = true;
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("no serving line");
    (child, addr)
}

/// What a restart shows: the listed names, and the state directory's problems.
struct Seen {
    listed: BTreeSet<String>,
    half_made: usize,
    temp_files: usize,
}

async fn inspect(client: &reqwest::Client, base: &str, state: &Path) -> Seen {
    let resp = client
        .get(format!("{base}/v1/datasets"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let listed: BTreeSet<String> = body["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_owned())
        .filter(|n| n != "base")
        .collect();
    let mut half_made = 0;
    let mut temp_files = 0;
    let mut on_disk = BTreeSet::new();
    if let Ok(dir) = std::fs::read_dir(state.join("datasets")) {
        for entry in dir {
            let file_name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if file_name.starts_with('.') {
                temp_files += 1;
                continue;
            }
            let stem = file_name.strip_suffix(".json").expect("only .json files");
            let bytes = std::fs::read(state.join("datasets").join(&file_name)).unwrap();
            if serde_json::from_slice::<Value>(&bytes).is_err() {
                eprintln!("half-made: {file_name} does not parse");
                half_made += 1;
            } else if !listed.contains(stem) {
                eprintln!("half-made: {file_name} is on disk but not served");
                half_made += 1;
            }
            on_disk.insert(stem.to_owned());
        }
    }
    for name in listed.difference(&on_disk) {
        eprintln!("half-made: {name} is served without a state file");
        half_made += 1;
    }
    Seen {
        listed,
        half_made,
        temp_files,
    }
}

/// One worker: register new names or delete acknowledged ones until `stop`.
// Each argument is one piece of the state the workers share.
#[allow(clippy::too_many_arguments)]
async fn worker(
    client: reqwest::Client,
    base: String,
    rng: Arc<Mutex<Rng>>,
    pool: Arc<Mutex<Vec<String>>>,
    prefix: String,
    records: Arc<Mutex<Vec<Record>>>,
    in_flight: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    let mut counter = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let delete = {
            let mut rng = rng.lock().unwrap();
            let mut pool = pool.lock().unwrap();
            if !pool.is_empty() && rng.below(3) == 0 {
                let i = rng.below(pool.len() as u64) as usize;
                Some(pool.swap_remove(i))
            } else {
                None
            }
        };
        let (op, name) = match delete {
            Some(name) => (Op::Delete, name),
            None => {
                counter += 1;
                (Op::Register, format!("{prefix}{counter}"))
            }
        };
        let index = {
            let mut records = records.lock().unwrap();
            records.push(Record {
                op,
                name: name.clone(),
                acked: false,
            });
            records.len() - 1
        };
        in_flight.fetch_add(1, Ordering::SeqCst);
        let sent = match op {
            Op::Register => client
                .post(format!("{base}/v1/datasets"))
                .json(&serde_json::json!({"name": name, "file": "base.npy"}))
                .bearer_auth("adm")
                .send()
                .await
                .map(|r| r.status().as_u16()),
            Op::Delete => client
                .delete(format!("{base}/v1/datasets/{name}"))
                .bearer_auth("adm")
                .send()
                .await
                .map(|r| r.status().as_u16()),
        };
        in_flight.fetch_sub(1, Ordering::SeqCst);
        match (sent, op) {
            (Ok(201), Op::Register) => {
                records.lock().unwrap()[index].acked = true;
                pool.lock().unwrap().push(name);
            }
            (Ok(204), Op::Delete) => records.lock().unwrap()[index].acked = true,
            (Ok(status), _) => panic!("{op:?} {name}: unexpected {status}"),
            // The server is gone: not acknowledged.
            (Err(_), _) => break,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_registrations_survive_kill_9() {
    let kills: usize = std::env::var("ARRAYD_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let data = tempfile::tempdir().unwrap();
    write_npy(
        &data.path().join("base.npy"),
        "<f4",
        &[4],
        &f32_bytes((0..4).map(|i| i as f32)),
    );
    let state = tempfile::tempdir().unwrap();
    let rng = Arc::new(Mutex::new(Rng(0x9E37_79B9_7F4A_7C15)));
    let mut model: BTreeMap<String, Expect> = BTreeMap::new();
    let (mut kill_points, mut in_flight_at_kill, mut acknowledged) = (0usize, 0usize, 0usize);
    let (mut lost, mut half_made, mut max_temp) = (0usize, 0usize, 0usize);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    for iteration in 0..=kills {
        let (mut child, addr) = start(data.path(), state.path());
        let base = format!("http://{addr}");

        // The restart against the model.
        let seen = inspect(&client, &base, state.path()).await;
        half_made += seen.half_made;
        max_temp = max_temp.max(seen.temp_files);
        for (name, expect) in std::mem::take(&mut model) {
            let listed = seen.listed.contains(&name);
            if expect == Expect::Present && !listed {
                eprintln!("lost: {name} was acknowledged registered");
                lost += 1;
            }
            if listed {
                model.insert(name, Expect::Present);
            }
        }
        for name in seen.listed.difference(&model.keys().cloned().collect()) {
            eprintln!("lost: {name} is listed after an acknowledged delete (or never made)");
            lost += 1;
        }
        if iteration == kills {
            child.kill().unwrap();
            child.wait().unwrap();
            break;
        }

        // Traffic, then SIGKILL after a random delay.
        let pool = Arc::new(Mutex::new(model.keys().cloned().collect::<Vec<_>>()));
        let records = Arc::new(Mutex::new(Vec::new()));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for w in 0..IN_FLIGHT {
            workers.push(tokio::spawn(worker(
                client.clone(),
                base.clone(),
                Arc::clone(&rng),
                Arc::clone(&pool),
                format!("k{iteration}w{w}n"),
                Arc::clone(&records),
                Arc::clone(&in_flight),
                Arc::clone(&stop),
            )));
        }
        let delay = rng.lock().unwrap().below(31);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let busy = in_flight.load(Ordering::SeqCst) > 0;
        child.kill().unwrap();
        stop.store(true, Ordering::SeqCst);
        child.wait().unwrap();
        for w in workers {
            w.await.unwrap();
        }
        kill_points += 1;
        in_flight_at_kill += usize::from(busy);

        for record in records.lock().unwrap().iter() {
            acknowledged += usize::from(record.acked);
            match (record.op, record.acked) {
                (Op::Register, true) => {
                    model.insert(record.name.clone(), Expect::Present);
                }
                (Op::Delete, true) => {
                    model.remove(&record.name);
                }
                (_, false) => {
                    model.insert(record.name.clone(), Expect::Either);
                }
            }
        }
    }

    eprintln!(
        "kill points: {kill_points}, in flight at kill: {in_flight_at_kill}, \
         acknowledged: {acknowledged}, lost: {lost}, half-made: {half_made} \
         (temporary files left, at most: {max_temp})"
    );
    assert_eq!(lost, 0);
    assert_eq!(half_made, 0);
    assert_eq!(kill_points, kills);
}
