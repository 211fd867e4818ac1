//! End-to-end benchmark of the client and the service, with the transport's limit measured in the
//! same run.
//!
//! ```text
//! cargo build --release -p cc-executor-mcp -p tests
//! target/release/bench --runs 5 --json bench.json          # embedded service (in a child process)
//! target/release/bench --url ws://127.0.0.1:8004/ws        # any running service
//! target/release/bench --smoke                             # every scenario at a tiny size
//! target/release/bench --only pool                         # four services behind nginx
//! ```
//!
//! Prints a table (median, min, max of N runs) and, with `--json FILE`, the medians as one flat
//! JSON object.
//!
//! `lines_per_s` and `payload_mb_per_s` take one frame per line (the client does not ask for
//! batched output); `lines_batched_per_s` and `payload_batched_mb_per_s` are the same runs with
//! batched output, still read as one event per line. `mcp_flood_short_s` and `mcp_flood_long_s`
//! time an MCP `execute` of 20 MB in 2-byte lines and in 1,000-byte lines (and, with `--big`,
//! `mcp_flood_50mb_s` of `yes | head -c 50000000`).

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use cc_executor_client::protocol::{OutputParams, OutputStream};
use cc_executor_client::{Client, Command, OutputEvent};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug)]
#[command(about = "End-to-end benchmark of cc-executor (client + service)")]
struct Args {
    /// Use this running service instead of starting the embedded one.
    #[arg(long)]
    url: Option<String>,
    /// Runs per scenario (median, min, max are reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Write the medians as one flat JSON object to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Every scenario at a tiny size (keeps the benchmark from rotting; not a measurement).
    #[arg(long)]
    smoke: bool,
    /// Also stream 1 GB (the memory scenario); off by default to keep a run short.
    #[arg(long)]
    big: bool,
    /// Run only these scenarios (comma-separated: latency, lines, payload, big, concurrent,
    /// mcp, flood, limit, pool), e.g. to profile one of them. `pool` needs nginx installed.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Internal: serve the embedded service on this address and print its URL.
    #[arg(long, hide = true)]
    serve: Option<String>,
}

struct Sizes {
    latency_iters: usize,
    lines: u64,
    payload_lines: u64,
    big_lines: u64,
    concurrent: usize,
    mcp_iters: usize,
    flood_bytes: u64,
}

#[derive(Default)]
struct Report {
    rows: BTreeMap<&'static str, Vec<f64>>,
    order: Vec<&'static str>,
}

impl Report {
    fn add(&mut self, key: &'static str, v: f64) {
        if !self.rows.contains_key(key) {
            self.order.push(key);
        }
        self.rows.entry(key).or_default().push(v);
    }

    fn median(&self, key: &str) -> Option<f64> {
        let mut v = self.rows.get(key)?.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        Some(v[v.len() / 2])
    }

    fn print(&self) {
        println!(
            "{:<26} {:>14} {:>14} {:>14} {:>5}",
            "figure", "median", "min", "max", "runs"
        );
        for key in &self.order {
            let v = &self.rows[key];
            let min = v.iter().copied().fold(f64::INFINITY, f64::min);
            let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            println!(
                "{:<26} {:>14.3} {:>14.3} {:>14.3} {:>5}",
                key,
                self.median(key).unwrap_or(f64::NAN),
                min,
                max,
                v.len()
            );
        }
    }

    fn json(&self) -> String {
        let map: serde_json::Map<String, serde_json::Value> = self
            .order
            .iter()
            .map(|k| ((*k).to_owned(), serde_json::json!(self.median(k))))
            .collect();
        serde_json::to_string_pretty(&map).expect("json")
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    raise_fd_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Some(addr) = &args.serve {
        return rt.block_on(serve(addr));
    }
    rt.block_on(run(args))
}

/// The embedded service, in this process (used as `bench --serve ADDR` in a child process so that
/// the service's memory is measured apart from the client's).
async fn serve(addr: &str) -> Result<(), Box<dyn std::error::Error>> {
    let server = cc_executor_server::Server::builder()
        .max_sessions(4096)
        .bind(addr)
        .await?;
    println!("{}", server.url());
    // Serve until stdin closes (the parent exits or drops the pipe).
    let mut sink = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut sink).await;
    server.shutdown().await;
    Ok(())
}

struct Service {
    url: String,
    pid: Option<u32>,
    _child: Option<tokio::process::Child>,
}

async fn start_service(args: &Args) -> Result<Service, Box<dyn std::error::Error>> {
    if let Some(url) = &args.url {
        return Ok(Service {
            url: url.clone(),
            pid: None,
            _child: None,
        });
    }
    spawn_embedded().await
}

/// The embedded service in a child process of its own.
async fn spawn_embedded() -> Result<Service, Box<dyn std::error::Error>> {
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["--serve", "127.0.0.1:0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let url = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await??
        .ok_or("the embedded service exited before printing its URL")?;
    Ok(Service {
        url,
        pid: child.id(),
        _child: Some(child),
    })
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let sizes = if args.smoke {
        Sizes {
            latency_iters: 5,
            lines: 1_000,
            payload_lines: 1_000,
            big_lines: 2_000,
            concurrent: 10,
            mcp_iters: 3,
            flood_bytes: 20_000,
        }
    } else {
        Sizes {
            latency_iters: 200,
            lines: 1_000_000,
            payload_lines: 50_000,
            big_lines: 1_000_000,
            concurrent: 1_000,
            mcp_iters: 100,
            flood_bytes: 20_000_000,
        }
    };
    let runs = if args.smoke { 1 } else { args.runs.max(1) };
    // The service's spawner leaves it by a double fork: let it be reparented here, where its CPU
    // time can be read.
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let service = start_service(&args).await?;
    let client = Client::builder(&service.url)
        .heartbeat_timeout(Duration::from_secs(120))
        .build()?;
    // One frame per line, as before batched output (and as with services without it).
    let per_line = Client::builder(&service.url)
        .heartbeat_timeout(Duration::from_secs(120))
        .batch_output(false)
        .build()?;
    let mut report = Report::default();
    eprintln!("service: {}", service.url);

    let want = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);

    for _ in 0..if want("latency") { runs } else { 0 } {
        let (reused, connect) = latency(&client, sizes.latency_iters).await?;
        report.add("latency_reused_ms", reused);
        report.add("latency_connect_ms", connect);
    }
    for _ in 0..if want("lines") { runs } else { 0 } {
        let seq = format!("seq 1 {}", sizes.lines);
        let secs = stream(&per_line, &seq, sizes.lines).await?;
        report.add("lines_per_s", sizes.lines as f64 / secs);
        let secs = stream(&client, &seq, sizes.lines).await?;
        report.add("lines_batched_per_s", sizes.lines as f64 / secs);
    }
    for _ in 0..if want("payload") { runs } else { 0 } {
        let cmd = payload_cmd(sizes.payload_lines);
        let mb = (sizes.payload_lines * 1000) as f64 / 1e6;
        let secs = stream(&per_line, &cmd, sizes.payload_lines).await?;
        report.add("payload_mb_per_s", mb / secs);
        let secs = stream(&client, &cmd, sizes.payload_lines).await?;
        report.add("payload_batched_mb_per_s", mb / secs);
    }
    if (args.big || args.smoke || !args.only.is_empty()) && want("big") {
        let secs = stream(&per_line, &payload_cmd(sizes.big_lines), sizes.big_lines).await?;
        report.add(
            "big_payload_mb_per_s",
            (sizes.big_lines * 1000) as f64 / 1e6 / secs,
        );
    }
    if let Some(pid) = service.pid {
        report.add("service_peak_rss_mb", peak_rss_mb(Some(pid)));
    }
    report.add("client_peak_rss_mb", peak_rss_mb(None));

    if want("concurrent") {
        let before = Cpu::now(service.pid);
        let (ok, failed, wall) = concurrent(&client, sizes.concurrent).await;
        report.add("concurrent_ok", ok as f64);
        report.add("concurrent_failed", failed as f64);
        report.add("concurrent_wall_s", wall);
        // Where the CPU went: the client, the service, and the run's processes (supervisors,
        // shells, `sleep`: what the service's spawner has reaped).
        let after = Cpu::now(service.pid);
        report.add("concurrent_client_cpu_s", after.client - before.client);
        if service.pid.is_some() {
            report.add("concurrent_service_cpu_s", after.service - before.service);
            report.add("concurrent_runs_cpu_s", after.runs - before.runs);
        }
    }

    if want("pool") {
        let (ok, wall, spread) = pool(sizes.concurrent).await?;
        report.add("pool_concurrent_ok", ok as f64);
        report.add("pool_concurrent_wall_s", wall);
        report.add("pool_spread_max_over_min", spread);
    }

    if want("mcp") {
        match mcp_latency(&service.url, sizes.mcp_iters).await {
            Ok(ms) => report.add("mcp_execute_ms", ms),
            Err(e) => eprintln!("mcp scenario skipped: {e}"),
        }
    }

    if want("flood") {
        match mcp_floods(&service.url, &sizes, runs, args.big, &mut report).await {
            Ok(()) => {}
            Err(e) => eprintln!("flood scenario skipped: {e}"),
        }
    }

    for _ in 0..if want("limit") { runs } else { 0 } {
        let secs = transport_limit(sizes.lines, 7).await?;
        report.add("limit_lines_per_s", sizes.lines as f64 / secs);
        let secs = transport_limit(sizes.payload_lines, 1000).await?;
        report.add(
            "limit_payload_mb_per_s",
            (sizes.payload_lines * 1000) as f64 / 1e6 / secs,
        );
    }
    for (name, a, b) in [
        ("lines_ratio_to_limit", "lines_per_s", "limit_lines_per_s"),
        (
            "payload_ratio_to_limit",
            "payload_mb_per_s",
            "limit_payload_mb_per_s",
        ),
        (
            "lines_batched_speedup",
            "lines_batched_per_s",
            "lines_per_s",
        ),
        (
            "mcp_flood_short_to_long",
            "mcp_flood_short_s",
            "mcp_flood_long_s",
        ),
    ] {
        if let (Some(a), Some(b)) = (report.median(a), report.median(b)) {
            report.add(name, a / b);
        }
    }

    report.print();
    if let Some(path) = &args.json {
        std::fs::write(path, report.json())?;
    }
    Ok(())
}

/// A command printing `n` lines of 999 characters plus `\n` (1,000 bytes each).
fn payload_cmd(n: u64) -> String {
    format!("yes \"$(printf '%0999d' 0)\" | head -n {n}")
}

/// Median milliseconds of `true` -> completed on a reused session, and with a fresh connection.
async fn latency(client: &Client, iters: usize) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let session = client.session().await?;
    let mut reused = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        let out = session.run("true").await?;
        reused.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(out.exit_code, Some(0));
    }
    session.close().await?;
    let mut connect = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        let out = client.run("true").await?;
        connect.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(out.exit_code, Some(0));
    }
    Ok((median(&mut reused), median(&mut connect)))
}

/// Seconds to stream `cmd` to the end, checking that `expect_lines` output events arrived.
async fn stream(
    client: &Client,
    cmd: &str,
    expect_lines: u64,
) -> Result<f64, Box<dyn std::error::Error>> {
    let t = Instant::now();
    let mut run = client.execute(Command::new(cmd)).await?;
    let mut lines = 0u64;
    while let Some(ev) = run.next().await {
        if let OutputEvent::Output { .. } = ev? {
            lines += 1;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    if lines != expect_lines {
        return Err(format!("{cmd}: expected {expect_lines} lines, got {lines}").into());
    }
    Ok(secs)
}

/// `n` concurrent `sleep 1; echo done` from one client: (ok, failed, wall seconds).
async fn concurrent(client: &Client, n: usize) -> (usize, usize, f64) {
    let t = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                matches!(client.run("sleep 1; echo done").await, Ok(o) if o.stdout == "done\n")
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        if matches!(t.await, Ok(true)) {
            ok += 1;
        }
    }
    (ok, n - ok, t.elapsed().as_secs_f64())
}

/// `n` concurrent `sleep 1; echo done` over four services behind nginx (`deploy/nginx.conf`,
/// `wss://` with a fresh certificate): (ok, wall seconds, most runs on one service over the
/// fewest, from each service's `/metrics`).
async fn pool(n: usize) -> Result<(usize, f64, f64), Box<dyn std::error::Error>> {
    let mut services = Vec::new();
    for _ in 0..4 {
        services.push(spawn_embedded().await?);
    }
    let addrs: Vec<std::net::SocketAddr> = services
        .iter()
        .map(|s| {
            s.url
                .trim_start_matches("ws://")
                .trim_end_matches("/ws")
                .parse()
        })
        .collect::<Result<_, _>>()?;
    let cert = tests::nginx::TestCert::new();
    let upstreams: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    let nginx = tests::nginx::Nginx::start(&upstreams, &cert).await;
    let client = Client::builder(&nginx.url)
        .tls_config(cert.client_config.clone())
        .heartbeat_timeout(Duration::from_secs(120))
        .build()?;
    let before = runs_started(&addrs).await?;
    let (ok, _, wall) = concurrent(&client, n).await;
    let after = runs_started(&addrs).await?;
    let per: Vec<f64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    eprintln!("pool: runs per service {per:?}");
    let max = per.iter().copied().fold(0.0, f64::max);
    let min = per.iter().copied().fold(f64::INFINITY, f64::min);
    drop(nginx);
    Ok((ok, wall, max / min.max(1.0)))
}

/// `cc_executor_runs_started_total` of each service.
async fn runs_started(
    addrs: &[std::net::SocketAddr],
) -> Result<Vec<f64>, Box<dyn std::error::Error>> {
    let mut out = Vec::new();
    for addr in addrs {
        let (_, text) = tests::ws::http_get(*addr, "/metrics", &[]).await;
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("cc_executor_runs_started_total "))
            .ok_or("no runs_started in /metrics")?;
        out.push(line.trim().parse()?);
    }
    Ok(out)
}

/// An MCP client of `cc-executor-mcp` (built next to the bench) serving `url`.
type Mcp = rmcp::service::RunningService<rmcp::RoleClient, ()>;

async fn mcp_client(url: &str) -> Result<Mcp, Box<dyn std::error::Error>> {
    use rmcp::transport::TokioChildProcess;
    use rmcp::ServiceExt;

    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .map(|d| d.join("cc-executor-mcp"))
        .filter(|p| p.exists())
        .ok_or("cc-executor-mcp is not built next to the bench (cargo build --release -p cc-executor-mcp)")?;
    let mut cmd = tokio::process::Command::new(bin);
    cmd.arg("--url").arg(url).stderr(Stdio::null());
    Ok(().serve(TokioChildProcess::new(cmd)?).await?)
}

/// Milliseconds of one `tools/call execute {command}`, which must succeed.
async fn mcp_execute(client: &Mcp, command: &str) -> Result<f64, Box<dyn std::error::Error>> {
    use rmcp::model::CallToolRequestParams;

    let args: serde_json::Map<String, serde_json::Value> =
        serde_json::from_value(serde_json::json!({"command": command}))?;
    let t = Instant::now();
    let res = client
        .call_tool(CallToolRequestParams::new("execute").with_arguments(args))
        .await?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    if res.is_error == Some(true) {
        return Err(format!("execute {command} failed: {res:?}").into());
    }
    Ok(ms)
}

/// Median milliseconds of `tools/call execute {command: "true"}` through `cc-executor-mcp`.
async fn mcp_latency(url: &str, iters: usize) -> Result<f64, Box<dyn std::error::Error>> {
    let client = mcp_client(url).await?;
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        times.push(mcp_execute(&client, "true").await?);
    }
    client.cancel().await?;
    Ok(median(&mut times))
}

/// Seconds of MCP `execute` floods: `flood_bytes` in 2-byte lines and in 1,000-byte lines
/// (`runs` times each), and 50 MB of 2-byte lines once with `big`.
async fn mcp_floods(
    url: &str,
    sizes: &Sizes,
    runs: usize,
    big: bool,
    report: &mut Report,
) -> Result<(), Box<dyn std::error::Error>> {
    let client = mcp_client(url).await?;
    let bytes = sizes.flood_bytes;
    for _ in 0..runs {
        let short = mcp_execute(&client, &format!("yes | head -c {bytes}")).await?;
        report.add("mcp_flood_short_s", short / 1e3);
        let long = mcp_execute(&client, &payload_cmd(bytes / 1000)).await?;
        report.add("mcp_flood_long_s", long / 1e3);
    }
    if big {
        let ms = mcp_execute(&client, "yes | head -c 50000000").await?;
        report.add("mcp_flood_50mb_s", ms / 1e3);
    }
    client.cancel().await?;
    Ok(())
}

/// Seconds to push `n` `process.output` frames with `data_len`-byte data through a loopback
/// tokio-tungstenite connection with no process behind it (batched: feed, flush when done).
async fn transport_limit(n: u64, data_len: usize) -> Result<f64, Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let mut ws = tokio_tungstenite::accept_async(tcp).await?;
        let data = format!("{}\n", "x".repeat(data_len.saturating_sub(1)));
        let params = OutputParams {
            stream: OutputStream::Stdout,
            data: std::borrow::Cow::Borrowed(&data),
            truncated: false,
            chunk_index: None,
            total_chunks: None,
        };
        for i in 0..n {
            ws.feed(Message::text(params.encode_frame())).await?;
            if i % 64 == 63 {
                ws.flush().await?;
            }
        }
        ws.close(None).await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    });
    let t = Instant::now();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/")).await?;
    let mut frames = 0u64;
    while let Some(msg) = ws.next().await {
        match msg {
            Ok(Message::Text(_)) => frames += 1,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let _ = server.await;
    if frames != n {
        return Err(format!("transport limit: expected {n} frames, got {frames}").into());
    }
    Ok(secs)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// CPU seconds used so far by this process (the client), the service, and the processes below
/// the service (its spawner, the supervisors, the commands).
struct Cpu {
    client: f64,
    service: f64,
    runs: f64,
}

impl Cpu {
    fn now(service: Option<u32>) -> Cpu {
        use tests::procs::{children, cpu_secs};
        let own = |pid| cpu_secs(pid).map_or(0.0, |(own, _)| own);
        // Every live process below this one (a subreaper: the service's double-forked spawner
        // is ours) but the service, with the processes each reaped.
        let mut runs = 0.0;
        let mut below: Vec<u32> = children(std::process::id());
        below.retain(|pid| Some(*pid) != service);
        while let Some(pid) = below.pop() {
            runs += cpu_secs(Some(pid)).map_or(0.0, |(own, reaped)| own + reaped);
            below.extend(children(pid));
        }
        Cpu {
            client: own(None),
            service: service.map_or(0.0, |pid| own(Some(pid))),
            runs,
        }
    }
}

/// Peak resident set (`VmHWM`) in MB of process `pid`, or of this process for `None`.
fn peak_rss_mb(pid: Option<u32>) -> f64 {
    tests::procs::status_kib(pid, "VmHWM").map_or(f64::NAN, |kib| kib as f64 / 1024.0)
}

/// 1,000 concurrent sessions need more than the usual 1,024 descriptors.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}
