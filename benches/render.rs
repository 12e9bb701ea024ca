//! `cargo bench --bench render`: rendering 10,000 NextApps (30,000 objects) end to end, side by side
//! with the floor: plain formatted writes of the very same bytes (asserted byte-identical).
//!
//! Reported, as medians of several runs in this one session:
//! - whole process: `knext render apps.yaml > /dev/null` vs a child that reads the same file and
//!   writes the same bytes with plain formatted writes (`write!`, streamed through a `BufWriter`), with
//!   the peak RSS of each (getrusage of the children);
//! - in process: knext's pipeline (split, parse, validate, render, emit) vs the same formatted writes
//!   and vs a bare byte copy of the output (the absolute floor);
//!
//! - single-threaded stage costs (split, parse, validate, render, emit), to show where time goes.
//!
//! Environment: `KNEXT_BENCH_APPS` (default 10000), `KNEXT_BENCH_RUNS` (default 7).
//!
//! NB: peak RSS comes from `getrusage(RUSAGE_CHILDREN)`, the largest of all children so far, and a
//! child spawned with vfork semantics starts from this process's high-water mark; so the whole-process
//! runs happen first, while this process is still small, and the baseline runs before knext.

// Same allocator as the `knext` binary, so in-process figures match it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use knext::api::parse_nextapp;
use knext::pipeline::{self, Source};
use knext::render::RenderOptions;
use knext::yaml::parse::split_documents;

/// One generated app's parameters.
struct Params {
    name: String,
    namespace: String,
    image: String,
    min_scale: u32,
}

fn params(n: usize) -> Vec<Params> {
    (0..n)
        .map(|i| Params {
            name: format!("app-{i:05}"),
            namespace: format!("team-{:02}", i % 40),
            image: format!(
                "registry.example.com/team/app-{i:05}@sha256:{:064x}",
                (i as u128 + 1) * 0x9e37_79b9
            ),
            min_scale: (i % 3) as u32,
        })
        .collect()
}

fn input(apps: &[Params]) -> String {
    let mut s = String::with_capacity(apps.len() * 260);
    for p in apps {
        let _ = write!(
            s,
            "---\napiVersion: apps.kn-next.dev/v1alpha1\nkind: NextApp\nmetadata:\n  name: {}\n  namespace: {}\n\
             spec:\n  image: {}\n  scaling:\n    minScale: {}\n    maxScale: 10\n  env:\n    LOG_LEVEL: info\n",
            p.name, p.namespace, p.image, p.min_scale
        );
    }
    s
}

/// The plain-writes floor: the literal text of knext's output for one app, cut at the four values, so
/// the baseline does nothing but push the same bytes.
struct Template {
    header: String,
    pieces: Vec<(String, Option<usize>)>,
}

const SAMPLE: [&str; 4] = ["zz-name-zz", "zz-ns-zz", "zz.example/zz-image-zz@sha256:", "7"];

impl Template {
    /// Derives the template from knext's own rendering of a sample app with marker values.
    fn new() -> Template {
        let sample = Params {
            name: SAMPLE[0].into(),
            namespace: SAMPLE[1].into(),
            image: format!("{}{}", SAMPLE[2], "a".repeat(64)),
            min_scale: 7,
        };
        let text = render_knext(&input(std::slice::from_ref(&sample)));
        let (header, body) = text.split_at(text.find("---\n").expect("a document"));
        let body = body.replace(&format!("{}{}", SAMPLE[2], "a".repeat(64)), "\u{1}2\u{1}");
        let body = body
            .replace(SAMPLE[0], "\u{1}0\u{1}")
            .replace(SAMPLE[1], "\u{1}1\u{1}");
        let body = body.replace("min-scale: '7'", "min-scale: '\u{1}3\u{1}'");
        let body = body.replace("min-scale: \"7\"", "min-scale: \"\u{1}3\u{1}\"");
        let mut pieces = Vec::new();
        for (i, part) in body.split('\u{1}').enumerate() {
            if i % 2 == 0 {
                pieces.push((part.to_owned(), None));
            } else {
                pieces.push((String::new(), Some(part.parse().expect("marker index"))));
            }
        }
        assert!(
            pieces.iter().filter(|p| p.1 == Some(3)).count() == 1,
            "min-scale marker not found"
        );
        Template {
            header: header.to_owned(),
            pieces,
        }
    }

    /// Formatted writes (`write!`), streamed: what a hand-written generator does.
    fn write_fmt(&self, apps: &[Params], w: &mut impl std::io::Write) {
        let mut emit = || -> std::io::Result<()> {
            write!(w, "{}", self.header)?;
            for p in apps {
                for (text, slot) in &self.pieces {
                    match slot {
                        None => write!(w, "{text}")?,
                        Some(0) => write!(w, "{}", p.name)?,
                        Some(1) => write!(w, "{}", p.namespace)?,
                        Some(2) => write!(w, "{}", p.image)?,
                        Some(_) => write!(w, "{}", p.min_scale)?,
                    }
                }
            }
            w.flush()
        };
        emit().expect("write");
    }

    /// The absolute floor: copying the bytes into one buffer.
    fn write(&self, apps: &[Params], out: &mut String) {
        out.push_str(&self.header);
        let mut num = itoa::Buffer::new();
        for p in apps {
            for (text, slot) in &self.pieces {
                match slot {
                    None => out.push_str(text),
                    Some(0) => out.push_str(&p.name),
                    Some(1) => out.push_str(&p.namespace),
                    Some(2) => out.push_str(&p.image),
                    Some(_) => out.push_str(num.format(p.min_scale)),
                }
            }
        }
    }
}

fn render_knext(text: &str) -> String {
    let outcome = pipeline::run(
        &[Source {
            name: "bench".into(),
            text: text.to_owned(),
        }],
        &RenderOptions::default(),
    );
    assert_eq!(outcome.exit_code(), 0, "{:?}", outcome.diagnostics.first());
    let mut out = String::with_capacity(outcome.apps.len() * 3 * 1200);
    knext::render::layout::stream(&outcome.apps, &mut out);
    out
}

/// Reads back the four values per app from the generated input with plain line scanning (the baseline
/// child's only "parsing").
fn scan(text: &str) -> Vec<Params> {
    let mut out = Vec::new();
    let mut cur: Option<Params> = None;
    for line in text.lines() {
        let line = line.trim_start();
        if let Some(v) = line.strip_prefix("name: ") {
            if let Some(p) = cur.take() {
                out.push(p);
            }
            cur = Some(Params {
                name: v.into(),
                namespace: String::new(),
                image: String::new(),
                min_scale: 0,
            });
        } else if let (Some(v), Some(p)) = (line.strip_prefix("namespace: "), cur.as_mut()) {
            p.namespace = v.into();
        } else if let (Some(v), Some(p)) = (line.strip_prefix("image: "), cur.as_mut()) {
            p.image = v.into();
        } else if let (Some(v), Some(p)) = (line.strip_prefix("minScale: "), cur.as_mut()) {
            p.min_scale = v.parse().unwrap_or(0);
        }
    }
    out.extend(cur);
    out
}

/// Milliseconds, for printing.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

fn max_rss_children_kib() -> i64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map(|u| u.max_rss())
        .unwrap_or(-1)
}

/// Runs a child with stdout to /dev/null (`None`) or to a fresh file (the realistic GitOps case).
fn run_child(cmd: &mut Command, out: Option<&Path>) -> Duration {
    let stdout = match out {
        None => Stdio::null(),
        Some(path) => Stdio::from(std::fs::File::create(path).expect("output file")),
    };
    let t = Instant::now();
    let status = cmd
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .status()
        .expect("spawn child");
    let elapsed = t.elapsed();
    assert!(status.success(), "child failed: {cmd:?}");
    elapsed
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Child mode: the plain-writes floor as a whole process.
    if let Some(i) = args.iter().position(|a| a == "--baseline-child") {
        let text = std::fs::read_to_string(&args[i + 1]).expect("read input");
        let apps = scan(&text);
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        Template::new().write_fmt(&apps, &mut out);
        return;
    }
    if args.iter().any(|a| a == "--list") {
        println!("render: bench");
        return;
    }
    let n: usize = std::env::var("KNEXT_BENCH_APPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let runs: usize = std::env::var("KNEXT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let apps = params(n);
    let dir = std::env::temp_dir().join(format!("knext-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("apps.yaml");
    std::fs::write(&file, input(&apps)).expect("write input");

    // Whole processes on a file, stdout to /dev/null; first, while this process is small.
    let me = std::env::current_exe().expect("current exe");
    let knext_bin = Path::new(env!("CARGO_BIN_EXE_knext"));
    let out_file = dir.join("out.yaml");
    let baseline = |out: Option<&Path>| {
        let mut cmd = Command::new(&me);
        cmd.arg("--baseline-child").arg(&file);
        median((0..runs).map(|_| run_child(&mut cmd, out)).collect())
    };
    let knext = |out: Option<&Path>| {
        let mut cmd = Command::new(knext_bin);
        cmd.arg("render").arg(&file);
        median((0..runs).map(|_| run_child(&mut cmd, out)).collect())
    };
    let base_proc = baseline(None);
    let base_file = baseline(Some(&out_file));
    let base_rss = max_rss_children_kib();
    let ours_proc = knext(None);
    let ours_file = knext(Some(&out_file));
    let ours_rss = max_rss_children_kib();
    let text = std::fs::read_to_string(&file).expect("read input");
    let _ = std::fs::remove_dir_all(&dir);

    // Same bytes, or the comparison means nothing.
    let template = Template::new();
    let knext_out = render_knext(&text);
    let mut base_out = String::new();
    template.write(&apps, &mut base_out);
    assert!(knext_out == base_out, "baseline and knext output differ");
    let mut fmt_out = Vec::new();
    template.write_fmt(&apps, &mut fmt_out);
    assert!(
        fmt_out == knext_out.as_bytes(),
        "formatted-writes baseline and knext output differ"
    );
    let mb = knext_out.len() as f64 / 1e6;
    println!(
        "render bench: {n} NextApps, {} objects, input {:.1} MB, output {mb:.1} MB, {} threads, median of {runs}",
        knext_out.matches("\n---\n").count(),
        text.len() as f64 / 1e6,
        rayon::current_num_threads()
    );
    println!(
        "whole process formatted writes  > /dev/null {:>7.1} ms   > file {:>7.1} ms   peak RSS {:>6.1} MiB",
        ms(base_proc),
        ms(base_file),
        base_rss as f64 / 1024.0
    );
    println!(
        "whole process knext render      > /dev/null {:>7.1} ms   > file {:>7.1} ms   peak RSS {:>6.1} MiB",
        ms(ours_proc),
        ms(ours_file),
        ours_rss as f64 / 1024.0
    );
    println!(
        "whole process ratio knext / formatted writes: {:.1}x to /dev/null, {:.1}x to a file",
        ours_proc.as_secs_f64() / base_proc.as_secs_f64(),
        ours_file.as_secs_f64() / base_file.as_secs_f64()
    );

    let copy = time(runs, || {
        let mut out = String::with_capacity(base_out.len());
        template.write(&apps, &mut out);
        out
    });
    let formatted = time(runs, || {
        let mut out = Vec::with_capacity(base_out.len());
        template.write_fmt(&apps, &mut out);
        out
    });
    let ours = time(runs, || render_knext(&text));
    println!(
        "in process    byte copy (floor) {:>8.1} ms",
        copy.as_secs_f64() * 1e3
    );
    println!(
        "in process    formatted writes  {:>8.1} ms",
        formatted.as_secs_f64() * 1e3
    );
    println!(
        "in process    knext             {:>8.1} ms   ({:.1}x formatted writes, {:.0} MB/s out)",
        ours.as_secs_f64() * 1e3,
        ours.as_secs_f64() / formatted.as_secs_f64(),
        mb / ours.as_secs_f64()
    );
    stages(&text, runs);
}

/// Single-threaded cost of each stage, to show where the time goes.
fn stages(text: &str, runs: usize) {
    let docs: Vec<_> = split_documents(text)
        .into_iter()
        .filter(|d| !d.is_blank())
        .collect();
    let split = time(runs, || split_documents(text));
    let parse = time(runs, || {
        docs.iter()
            .map(|d| parse_nextapp(d).expect("valid"))
            .collect::<Vec<_>>()
    });
    let apps: Vec<_> = docs.iter().map(|d| parse_nextapp(d).expect("valid")).collect();
    let validate = time(runs, || {
        apps.iter().filter(|a| knext::policy::validate(a).is_ok()).count()
    });
    let validated: Vec<_> = apps
        .iter()
        .map(|a| knext::policy::validate(a).expect("valid").0)
        .collect();
    let opts = RenderOptions::default();
    let render = time(runs, || {
        validated
            .iter()
            .map(|v| knext::render::app(v, &opts))
            .collect::<Vec<_>>()
    });
    let manifests: Vec<_> = validated
        .iter()
        .flat_map(|v| knext::render::app(v, &opts))
        .collect();
    let emit = time(runs, || {
        let mut out = String::with_capacity(40 << 20);
        for m in &manifests {
            out.push_str("---\n");
            m.write_yaml(&mut out).expect("emit");
        }
        out
    });
    // What the emitter replaces: serde_yaml's serializer on the same objects.
    let emit_serde_yaml = time(runs, || {
        let mut out = String::with_capacity(40 << 20);
        for m in &manifests {
            out.push_str("---\n");
            let text = match m {
                knext::render::Manifest::KnativeService(s) => serde_yaml::to_string(s),
                knext::render::Manifest::ServiceAccount(s) => serde_yaml::to_string(s),
                knext::render::Manifest::NetworkPolicy(p) => serde_yaml::to_string(p),
                knext::render::Manifest::ClusterImagePolicy(p) => serde_yaml::to_string(p),
                knext::render::Manifest::DaemonSet(d) => serde_yaml::to_string(d),
            };
            out.push_str(&text.expect("serde_yaml"));
        }
        out
    });
    println!(
        "emit, 1 thread: knext's emitter {:.1} ms, serde_yaml::to_string {:.1} ms ({:.1}x slower)",
        ms(emit),
        ms(emit_serde_yaml),
        emit_serde_yaml.as_secs_f64() / emit.as_secs_f64()
    );
    println!(
        "stages, 1 thread: split {:.1} ms, parse {:.1} ms, validate {:.1} ms, render {:.1} ms, emit {:.1} ms",
        ms(split),
        ms(parse),
        ms(validate),
        ms(render),
        ms(emit)
    );
}
