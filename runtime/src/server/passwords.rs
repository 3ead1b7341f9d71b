//! Passwords: argon2id, hashed and checked off the async threads, a bounded
//! number at a time, in memory that is allocated once and reused.
//!
//! Each check fills argon2's 19 MiB of working memory. Unbounded, a flood of
//! sign-ins ran hundreds at once and the allocator kept the buffers (the
//! server grew from 265 MiB to 6 GiB and stayed there). Here at most
//! `workers` checks run at once (`limits.passwordWorkers`; by default one
//! per core), each in one of `workers` buffers kept for
//! the server's life, so password checking never holds more than
//! `workers × 19 MiB`; at most [`QUEUE_PER_WORKER`] × `workers` more wait,
//! and past that a request is answered 503 with `Retry-After` at once.
//!
//! A check for a user that does not exist runs against a dummy hash, so an
//! unknown username takes as long as a wrong password.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc, Mutex,
};

use argon2::{
    password_hash::{rand_core::OsRng, Output, PasswordHash, SaltString},
    Algorithm, Argon2, Block, Params, Version,
};
use axum::http::StatusCode;
use tokio::sync::Semaphore;

use super::error::ApiError;

/// Checks waiting per worker before new ones are turned away.
pub const QUEUE_PER_WORKER: usize = 16;

/// The argon2id parameters new hashes use (the crate's defaults:
/// 19 MiB, two passes, one lane).
fn params() -> Params {
    Params::default()
}

/// The password-checking workers of one server.
pub struct Passwords {
    workers: usize,
    permits: Semaphore,
    waiting: AtomicUsize,
    max_waiting: usize,
    /// One argon2 working memory per worker, reused.
    memory: Mutex<Vec<Vec<Block>>>,
    /// Checked against when the user does not exist.
    dummy: String,
}

impl Passwords {
    /// `workers` checks at once (at least one).
    pub fn new(workers: usize) -> Arc<Passwords> {
        let workers = workers.max(1);
        let mut memory: Vec<Vec<Block>> = (0..workers)
            .map(|_| vec![Block::new(); params().block_count()])
            .collect();
        let dummy = hash_with(b"not anyone's password", &mut memory[0]);
        Arc::new(Passwords {
            workers,
            permits: Semaphore::new(workers),
            waiting: AtomicUsize::new(0),
            max_waiting: workers * QUEUE_PER_WORKER,
            memory: Mutex::new(memory),
            dummy,
        })
    }

    /// How many checks run at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// `workers` at once, or with 0 one per core of this machine.
    pub fn configured(workers: u32) -> Arc<Passwords> {
        Passwords::new(match workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n as usize,
        })
    }

    /// The PHC string of `password`, hashed with a new salt.
    pub async fn hash(self: &Arc<Self>, password: &str) -> Result<String, ApiError> {
        let password = password.as_bytes().to_vec();
        self.run(move |memory| hash_with(&password, memory)).await
    }

    /// Whether `password` matches `hash`; with no hash (no such user, or no
    /// password), a check against the dummy hash that always fails.
    pub async fn verify(
        self: &Arc<Self>,
        password: &str,
        hash: Option<&str>,
    ) -> Result<bool, ApiError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or(&self.dummy).to_string();
        let password = password.as_bytes().to_vec();
        let matches = self
            .run(move |memory| verify_with(&password, &hash, memory))
            .await?;
        Ok(known && matches)
    }

    /// Runs `work` on a blocking thread with a worker's memory, waiting for
    /// a worker if all are busy, or refusing when too many wait already.
    async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(busy());
        }
        let permit = self.permits.acquire().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let _permit = permit.map_err(|_| busy())?;
        let mut memory = self
            .memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .expect("a worker holds a permit, so a memory is free");
        let this = self.clone();
        let (answer, memory) = tokio::task::spawn_blocking(move || {
            let answer = work(&mut memory);
            (answer, memory)
        })
        .await
        .map_err(|_| ApiError::unavailable("could not check the password"))?;
        this.memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(memory);
        Ok(answer)
    }

    /// Checks running and waiting now (for tests and metrics).
    pub fn in_use(&self) -> (usize, usize) {
        let idle = self.memory.lock().unwrap_or_else(|e| e.into_inner()).len();
        (self.workers - idle, self.waiting.load(Ordering::SeqCst))
    }
}

/// Hashes `password` on this thread, in memory of its own: for the one
/// hash made at start-up (the bootstrap admin's), before any worker runs.
pub fn hash_once(password: &str) -> String {
    hash_with(
        password.as_bytes(),
        &mut vec![Block::new(); params().block_count()],
    )
}

fn busy() -> ApiError {
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "busy",
        message: "too many sign-ins are being checked; retry shortly".into(),
        field: None,
        retry_after: Some(1),
    }
}

/// Hashes with the default parameters in `memory`.
fn hash_with(password: &[u8], memory: &mut [Block]) -> String {
    let params = params();
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .expect("a generated salt decodes");
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, salt_bytes, &mut out, memory)
        .expect("argon2 hashes any password with default parameters");
    PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params).try_into().expect("default parameters encode"),
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).expect("a 32-byte output")),
    }
    .to_string()
}

/// Checks `password` against the PHC string `hash`, in `memory` when it is
/// large enough (a hash made with more memory than now gets its own).
fn verify_with(password: &[u8], hash: &str, memory: &mut [Block]) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(expected), Some(salt)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.hash,
        parsed.salt,
    ) else {
        return false;
    };
    let version = parsed
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or(Version::V0x13);
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut own;
    let memory: &mut [Block] = if memory.len() >= params.block_count() {
        memory
    } else {
        own = vec![Block::new(); params.block_count()];
        &mut own
    };
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt_bytes, &mut out, memory)
        .is_ok()
        && Output::new(&out).is_ok_and(|computed| computed == expected)
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_worker_count_is_configured_or_one_per_core() {
        assert_eq!(Passwords::configured(3).workers(), 3);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        assert_eq!(Passwords::configured(0).workers(), cores);
    }

    use super::*;

    #[tokio::test]
    async fn hashes_verify_here_and_with_the_argon2_crate() {
        use argon2::PasswordVerifier;
        let passwords = Passwords::new(1);
        let hash = passwords
            .hash("correct horse battery staple")
            .await
            .unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(passwords
            .verify("correct horse battery staple", Some(&hash))
            .await
            .unwrap());
        assert!(!passwords
            .verify("Correct horse battery staple", Some(&hash))
            .await
            .unwrap());
        // Interchangeable with hashes the crate makes and checks.
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse battery staple", &parsed)
            .is_ok());
        use argon2::PasswordHasher;
        let theirs = Argon2::default()
            .hash_password(
                b"another password entirely",
                &SaltString::generate(&mut OsRng),
            )
            .unwrap()
            .to_string();
        assert!(passwords
            .verify("another password entirely", Some(&theirs))
            .await
            .unwrap());
        assert!(!passwords.verify("x", Some("not a hash")).await.unwrap());
    }

    #[tokio::test]
    async fn no_user_is_a_full_check_that_fails() {
        let passwords = Passwords::new(1);
        assert!(!passwords
            .verify("not anyone's password", None)
            .await
            .unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_the_queue_checks_are_turned_away_at_once() {
        let passwords = Passwords::new(1);
        let mut checks = Vec::new();
        for _ in 0..(QUEUE_PER_WORKER + 8) {
            let passwords = passwords.clone();
            checks.push(tokio::spawn(async move {
                passwords.verify("guess", None).await
            }));
        }
        let mut busy = 0;
        for check in checks {
            match check.await.unwrap() {
                Ok(matched) => assert!(!matched),
                Err(error) => {
                    assert_eq!(error.status, StatusCode::SERVICE_UNAVAILABLE);
                    assert_eq!(error.retry_after, Some(1));
                    busy += 1;
                }
            }
        }
        assert!(busy > 0, "a queue of {QUEUE_PER_WORKER} overflowed");
        assert_eq!(
            passwords.in_use(),
            (0, 0),
            "every worker and memory is back"
        );
    }
}
