//! Criterion benchmarks for tufa-metadata: canonical JSON, signing,
//! verification and hashing, on PEP 458-shaped documents.
//!
//! Run with `cargo bench -p tufa-metadata --bench metadata`, or beside the
//! python-tuf baseline with `bash bench/run-metadata.sh` (see
//! `docs/benchmarks.md`).
//!
//! Fixtures:
//! - `bin390`: a hash-bin `Targets` role with 390 PyPI-shaped targets
//!   `packages/<project>/<project>-<ver>-py3-none-any.whl`, each with a length,
//!   `sha256` and `blake2b-256` (what tufa itself records for distributions).
//! - `pytuf_bin6`, `pytuf_bin390`: the bins that `sign_verify.py` (the
//!   python-tuf baseline) builds, target for target the same (same paths,
//!   lengths and `blake2b-256` digests, same version and expiry), so that the
//!   canonical bytes are identical and the two implementations do the same work.
//! - `snapshot16384`: a version-only snapshot of 16384 succinct bins plus
//!   `targets.json`, as the `pep458` layout publishes it.
//!
//! Time is process CPU time (`CLOCK_PROCESS_CPUTIME_ID`), as the python
//! baseline measures with `time.process_time`, so that other work on a shared
//! machine does not inflate one side of a comparison. `TUFA_BENCH_CLOCK=wall`
//! switches to criterion's wall clock.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
use serde_json::Map;
use tufa_metadata::canonical::to_canonical_bytes;
use tufa_metadata::key::Verifier;
use tufa_metadata::metadata::check_signatures;
use tufa_metadata::{
    Delegations, HashAlgorithm, MetaFile, Metadata, PrivateKey, RawMetadata, Root, Scheme, Signer,
    Snapshot, SuccinctRoles, TargetFile, Targets, UtcTime,
};

/// The seed `sign_verify.py` derives its synthetic targets from.
const PYTUF_SEED: &str = "pep458-bench";
/// Bins of the succinct delegation the bins are verified against (as `sign_verify.py`).
const BIT_LENGTH: u32 = 14;
const BIN_PREFIX: &str = "bin";
const BIN_ROLE: &str = "bin-0000";
const HASH_INPUT: usize = 1 << 20;

const SCHEMES: [(&str, Scheme); 4] = [
    ("ed25519", Scheme::Ed25519),
    ("ecdsa-sha2-nistp256", Scheme::EcdsaP256),
    ("ecdsa-sha2-nistp384", Scheme::EcdsaP384),
    ("rsassa-pss-sha256", Scheme::RsaPss(HashAlgorithm::Sha256)),
];

// ---------------------------------------------------------------------------
// Clock

/// Process CPU time, the counterpart of python's `time.process_time`.
struct ProcessCpuTime;

/// Only lends its (private) duration formatter to [`ProcessCpuTime`].
static WALL: WallTime = WallTime;

fn cpu_now() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

impl Measurement for ProcessCpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        cpu_now()
    }
    fn end(&self, start: Duration) -> Duration {
        cpu_now().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WALL.formatter()
    }
}

// ---------------------------------------------------------------------------
// Fixtures

fn expires() -> UtcTime {
    UtcTime::parse("2099-01-01T00:00:00Z").expect("valid date")
}

fn hex_digest(algorithm: HashAlgorithm, data: &[u8]) -> String {
    hex::encode(algorithm.digest(data))
}

fn target(length: u64, hashes: &[(&str, String)]) -> TargetFile {
    TargetFile {
        length,
        hashes: hashes
            .iter()
            .map(|(name, digest)| ((*name).to_string(), digest.clone()))
            .collect(),
        unrecognized: Map::new(),
    }
}

/// 390 targets shaped as PyPI distributions under tufa's `packages/` paths,
/// each with length, `sha256` and `blake2b-256`. Four files a project.
fn bin390() -> Metadata<Targets> {
    let mut signed = Targets::new(expires());
    signed.version = 2;
    for i in 0..390u32 {
        let project = format!("project-{:05}", i / 4);
        let path = format!(
            "packages/{project}/{project}-1.{}.0-py3-none-any.whl",
            i % 4
        );
        let seed = format!("tufa-bench:{i}");
        let sha256 = hex_digest(HashAlgorithm::Sha256, seed.as_bytes());
        let blake2b = hex_digest(HashAlgorithm::Blake2b256, seed.as_bytes());
        let r = u64::from_str_radix(&sha256[..8], 16).expect("hex");
        let file = target(
            5_000 + r % 30_000_000,
            &[("blake2b-256", blake2b), ("sha256", sha256)],
        );
        signed.targets.insert(path, file);
    }
    Metadata::new(signed)
}

/// The bin `sign_verify.py` builds with `t` targets: `repo_build.synthetic_target`
/// reproduced (`simple/<project>/index.html` every fifth target, the others at
/// files.pythonhosted.org-style paths; `blake2b-256` only).
fn pytuf_bin(t: u32) -> Metadata<Targets> {
    let mut signed = Targets::new(expires());
    signed.version = 2;
    for i in 0..t {
        let project = format!("project{:07}", i / 5);
        let kind = i % 5;
        let digest = hex_digest(
            HashAlgorithm::Blake2b256,
            format!("{PYTUF_SEED}:{i}").as_bytes(),
        );
        let r = u64::from_str_radix(&digest[..8], 16).expect("hex");
        let (path, length) = if kind == 0 {
            (format!("simple/{project}/index.html"), 500 + r % 20_000)
        } else {
            (
                format!(
                    "{}/{}/{}/{project}-1.0.{kind}.tar.gz",
                    &digest[..2],
                    &digest[2..4],
                    &digest[4..]
                ),
                5_000 + r % 30_000_000,
            )
        };
        signed
            .targets
            .insert(path, target(length, &[("blake2b-256", digest)]));
    }
    Metadata::new(signed)
}

/// A version-only snapshot listing `targets.json` and 16384 bins, version 1000.
/// Bin versions are pseudo-random in 1..=1000 (as in `sign_verify.py`, with
/// another generator, so sizes match to within a few bytes, not exactly).
fn snapshot16384() -> Metadata<Snapshot> {
    let mut signed = Snapshot::new(expires());
    signed.version = 1000;
    signed
        .meta
        .insert("targets.json".to_string(), MetaFile::new(1));
    let bins = succinct(Vec::new());
    let mut state: u64 = 16384;
    for name in bins.role_names() {
        // splitmix64
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        signed
            .meta
            .insert(format!("{name}.json"), MetaFile::new(1 + z % 1000));
    }
    Metadata::new(signed)
}

fn succinct(keyids: Vec<String>) -> SuccinctRoles {
    SuccinctRoles {
        keyids,
        threshold: 1,
        bit_length: BIT_LENGTH,
        name_prefix: BIN_PREFIX.to_string(),
        unrecognized: Map::new(),
    }
}

/// A top-level `targets` that delegates the 16384 bins to `key`.
fn delegator(key: &PrivateKey) -> Targets {
    let mut targets = Targets::new(expires());
    targets.delegations = Some(Delegations {
        keys: BTreeMap::from([(key.keyid().to_string(), key.public_key().clone())]),
        roles: None,
        succinct_roles: Some(succinct(vec![key.keyid().to_string()])),
        unrecognized: Map::new(),
    });
    targets
}

/// A signed document, its file bytes and what verifying it needs.
struct Signed<'k> {
    key: &'k PrivateKey,
    payload: Vec<u8>,
    sig: Vec<u8>,
    file: Vec<u8>,
    verifier: Verifier,
}

fn signed_targets<'k>(md: &Metadata<Targets>, key: &'k PrivateKey) -> Signed<'k> {
    let mut md = md.clone();
    md.sign(key).expect("sign");
    let payload = md.signed_bytes().expect("canonical");
    let sig = hex::decode(&md.signatures[0].sig).expect("hex signature");
    let file = md.to_bytes().expect("file bytes");
    let verifier = key.public_key().verifier(key.keyid()).expect("verifier");
    assert!(
        verifier.verify(&payload, &sig),
        "fixture signature verifies"
    );
    Signed {
        key,
        payload,
        sig,
        file,
        verifier,
    }
}

struct Keys {
    keys: Vec<(&'static str, PrivateKey)>,
}

impl Keys {
    fn generate() -> Keys {
        Keys {
            keys: SCHEMES
                .iter()
                .map(|&(name, scheme)| (name, PrivateKey::generate(scheme).expect("keygen")))
                .collect(),
        }
    }

    fn ed25519(&self) -> &PrivateKey {
        &self.keys[0].1
    }
}

fn describe(name: &str, payload: &[u8], file: &[u8]) {
    eprintln!(
        "fixture {name}: canonical signed {} bytes (sha256 {}), file {} bytes",
        payload.len(),
        hex_digest(HashAlgorithm::Sha256, payload),
        file.len()
    );
}

fn configure<M: Measurement>(group: &mut BenchmarkGroup<'_, M>) {
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(400))
        .measurement_time(Duration::from_millis(1600));
}

// ---------------------------------------------------------------------------
// Benchmarks

/// Canonical JSON. `signed_bytes` is what signing and python-tuf's
/// `Metadata.signed_bytes` do: typed role -> JSON value -> canonical bytes;
/// `encode_value` is the encoder alone, on a prebuilt `serde_json::Value`.
fn canonical<M: Measurement>(c: &mut Criterion<M>) {
    let mut group = c.benchmark_group("canonical");
    configure(&mut group);
    let docs = [
        ("bin390", bin390()),
        ("pytuf_bin6", pytuf_bin(6)),
        ("pytuf_bin390", pytuf_bin(390)),
    ];
    for (name, md) in &docs {
        let payload = md.signed_bytes().expect("canonical");
        describe(name, &payload, &md.to_bytes().expect("file"));
        group.throughput(Throughput::Bytes(payload.len() as u64));
        group.bench_function(format!("{name}/signed_bytes"), |b| {
            b.iter(|| black_box(md).signed_bytes().expect("canonical"));
        });
        if *name == "bin390" {
            let value = serde_json::to_value(&md.signed).expect("value");
            group.bench_function(format!("{name}/encode_value"), |b| {
                b.iter(|| to_canonical_bytes(black_box(&value)).expect("canonical"));
            });
        }
    }

    let snap = snapshot16384();
    let payload = snap.signed_bytes().expect("canonical");
    describe("snapshot16384", &payload, &snap.to_bytes().expect("file"));
    let value = serde_json::to_value(&snap.signed).expect("value");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Bytes(payload.len() as u64));
    group.bench_function("snapshot16384/signed_bytes", |b| {
        b.iter(|| black_box(&snap).signed_bytes().expect("canonical"));
    });
    group.bench_function("snapshot16384/encode_value", |b| {
        b.iter(|| to_canonical_bytes(black_box(&value)).expect("canonical"));
    });
    group.finish();
}

/// Signing: `Metadata::sign` (canonicalise + sign) and the signature alone.
fn sign<M: Measurement>(c: &mut Criterion<M>, keys: &Keys) {
    let mut group = c.benchmark_group("sign");
    configure(&mut group);
    group.throughput(Throughput::Elements(1));
    let bin = bin390();
    let payload = bin.signed_bytes().expect("canonical");
    for (name, key) in &keys.keys {
        let mut md = bin.clone();
        group.bench_function(format!("bin390/{name}"), |b| {
            b.iter(|| md.sign(black_box(key)).expect("sign"));
        });
        group.bench_function(format!("bin390/{name}/raw"), |b| {
            b.iter(|| key.sign(black_box(&payload)).expect("sign"));
        });
    }
    let ed = keys.ed25519();
    for (name, md) in [
        ("pytuf_bin6", pytuf_bin(6)),
        ("pytuf_bin390", pytuf_bin(390)),
    ] {
        let mut md = md;
        let payload = md.signed_bytes().expect("canonical");
        group.bench_function(format!("{name}/ed25519"), |b| {
            b.iter(|| md.sign(black_box(ed)).expect("sign"));
        });
        group.bench_function(format!("{name}/ed25519/raw"), |b| {
            b.iter(|| ed.sign(black_box(&payload)).expect("sign"));
        });
    }
    let mut snap = snapshot16384();
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("snapshot16384/ed25519", |b| {
        b.iter(|| snap.sign(black_box(ed)).expect("sign"));
    });
    group.finish();
}

/// Verification of the signed bin, per key type:
/// - `file`: end to end from file bytes (parse, canonicalise, check the
///   threshold against the delegating role, type the document);
/// - `delegate`: `Targets::verify_delegate` on an already parsed document
///   (what python-tuf's `verify_delegate` with a precomputed payload does;
///   includes parsing the public key and hex-decoding the signature);
/// - `raw`: the signature check alone with a parsed key.
fn verify<M: Measurement>(c: &mut Criterion<M>, keys: &Keys) {
    let mut group = c.benchmark_group("verify");
    configure(&mut group);
    group.throughput(Throughput::Elements(1));
    let bin = bin390();
    for (name, key) in &keys.keys {
        let s = signed_targets(&bin, key);
        let parent = delegator(s.key);
        let raw = RawMetadata::from_slice(BIN_ROLE, &s.file).expect("parse");
        group.bench_function(format!("bin390/{name}/file"), |b| {
            b.iter(|| {
                let raw = RawMetadata::from_slice(BIN_ROLE, black_box(&s.file)).expect("parse");
                parent
                    .verify_delegate("targets", BIN_ROLE, &raw)
                    .expect("verified");
                raw.into_metadata::<Targets>(BIN_ROLE).expect("typed")
            });
        });
        group.bench_function(format!("bin390/{name}/delegate"), |b| {
            b.iter(|| {
                parent
                    .verify_delegate("targets", BIN_ROLE, black_box(&raw))
                    .expect("verified")
            });
        });
        group.bench_function(format!("bin390/{name}/raw"), |b| {
            b.iter(|| assert!(s.verifier.verify(black_box(&s.payload), black_box(&s.sig))));
        });
    }

    let ed = keys.ed25519();
    let parent = delegator(ed);
    for (name, md) in [
        ("pytuf_bin6", pytuf_bin(6)),
        ("pytuf_bin390", pytuf_bin(390)),
    ] {
        let s = signed_targets(&md, ed);
        let raw = RawMetadata::from_slice(BIN_ROLE, &s.file).expect("parse");
        group.bench_function(format!("{name}/ed25519/delegate"), |b| {
            b.iter(|| {
                parent
                    .verify_delegate("targets", BIN_ROLE, black_box(&raw))
                    .expect("verified")
            });
        });
        // python-tuf's verify_delegate(role, md.signed_bytes, sigs)
        let typed = raw
            .clone()
            .into_metadata::<Targets>(BIN_ROLE)
            .expect("typed");
        let (keyids, keymap) = {
            let d = parent.delegations.as_ref().expect("delegations");
            (
                d.succinct_roles.as_ref().expect("succinct").keyids.clone(),
                d.keys.clone(),
            )
        };
        group.bench_function(format!("{name}/ed25519/delegate_canon"), |b| {
            b.iter(|| {
                let bytes = black_box(&typed).signed_bytes().expect("canonical");
                check_signatures(BIN_ROLE, &keyids, 1, &keymap, &bytes, &typed.signatures)
                    .into_result()
                    .expect("verified")
            });
        });
        group.bench_function(format!("{name}/ed25519/raw"), |b| {
            b.iter(|| assert!(s.verifier.verify(black_box(&s.payload), black_box(&s.sig))));
        });
        group.bench_function(format!("{name}/parse"), |b| {
            b.iter(|| Metadata::<Targets>::from_slice(black_box(&s.file)).expect("parse"));
        });
    }

    // Snapshot, verified against root as a client does.
    let mut snap = snapshot16384();
    snap.sign(ed).expect("sign");
    let file = snap.to_bytes().expect("file bytes");
    let mut root = Root::new(expires());
    root.add_key("snapshot", ed.public_key().clone())
        .expect("add key");
    let raw = RawMetadata::from_slice("snapshot", &file).expect("parse");
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("snapshot16384/ed25519/delegate", |b| {
        b.iter(|| {
            root.verify_role("snapshot", black_box(&raw))
                .expect("verified")
        });
    });
    group.bench_function("snapshot16384/ed25519/file", |b| {
        b.iter(|| {
            let raw = RawMetadata::from_slice("snapshot", black_box(&file)).expect("parse");
            root.verify_role("snapshot", &raw).expect("verified");
            raw.into_metadata::<Snapshot>("snapshot").expect("typed")
        });
    });
    group.finish();
}

/// Hashing 1 MiB in memory, and `TargetFile::from_reader` with the two
/// hashes tufa records for a distribution.
fn hashing<M: Measurement>(c: &mut Criterion<M>) {
    let mut group = c.benchmark_group("hash");
    configure(&mut group);
    group.throughput(Throughput::Bytes(HASH_INPUT as u64));
    let mut state: u32 = 0x1234_5678;
    let data: Vec<u8> = (0..HASH_INPUT)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect();
    for algorithm in [
        HashAlgorithm::Sha256,
        HashAlgorithm::Blake2b256,
        HashAlgorithm::Sha512,
    ] {
        group.bench_function(algorithm.name(), |b| {
            b.iter(|| algorithm.digest(black_box(&data)));
        });
    }
    // Reference: the same digests from aws-lc-rs, which tufa signs with
    // (Ed25519 hashes the message with its SHA-512, twice to sign, once to verify).
    for (name, algorithm) in [
        ("aws-lc-rs/sha256", &aws_lc_rs::digest::SHA256),
        ("aws-lc-rs/sha512", &aws_lc_rs::digest::SHA512),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| aws_lc_rs::digest::digest(algorithm, black_box(&data)));
        });
    }
    let both = [HashAlgorithm::Sha256, HashAlgorithm::Blake2b256];
    group.bench_function("target_file_from_reader/sha256+blake2b-256", |b| {
        b.iter(|| TargetFile::from_reader(black_box(&data[..]), &both).expect("hash"));
    });
    group.finish();
}

fn run<M: Measurement>(mut c: Criterion<M>) {
    let keys = Keys::generate();
    canonical(&mut c);
    sign(&mut c, &keys);
    verify(&mut c, &keys);
    hashing(&mut c);
    c.final_summary();
}

fn main() {
    let wall = std::env::var("TUFA_BENCH_CLOCK").is_ok_and(|v| v == "wall");
    eprintln!(
        "clock: {}",
        if wall {
            "wall time"
        } else {
            "process CPU time"
        }
    );
    if wall {
        run(Criterion::default().configure_from_args());
    } else {
        run(Criterion::default()
            .with_measurement(ProcessCpuTime)
            .configure_from_args());
    }
}
