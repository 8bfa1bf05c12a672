//! On-disk cache of compiled components, keyed by the component's content hash.
//!
//! Compiling a 12 MB JavaScript component takes seconds; loading its precompiled artifact takes
//! milliseconds. The key is the SHA-256 of the component bytes plus the wasmtime version, so a
//! changed component or an upgraded runtime never loads a stale artifact; an artifact compiled
//! with different engine settings is refused by wasmtime on load and recompiled.

use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use wasmtime::component::Component;
use wasmtime::Engine;

/// The version of wasmtime whose artifacts the cache holds.
const WASMTIME_VERSION: &str = "48.0.8";

/// Where compiled artifacts live.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: PathBuf,
}

/// Where a component came from this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a cached artifact.
    Hit,
    /// Compiled and stored.
    Compiled,
}

impl ComponentCache {
    /// A cache in `dir` (created on first store).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The default directory: `$SMA_CACHE_DIR`, else `$XDG_CACHE_HOME/sma/components`, else
    /// `~/.cache/sma/components`, else a directory under the system temp dir.
    pub fn default_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("SMA_CACHE_DIR") {
            return PathBuf::from(dir);
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("sma").join("components")
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The content key of `bytes`.
    pub fn key(bytes: &[u8]) -> String {
        let digest = Sha256::digest(bytes);
        format!("{}-wasmtime{WASMTIME_VERSION}", hex::encode(digest))
    }

    /// Loads the compiled form of `bytes`, compiling and storing it when absent or unusable.
    pub fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let path = self.dir.join(format!("{}.cwasm", Self::key(bytes)));
        // Read into memory rather than map the file: a mapped artifact that is truncated or
        // rewritten underneath the runtime (by another process, or an operator cleaning the
        // cache) would kill the process with SIGBUS. Reading costs milliseconds, once per load.
        if let Ok(artifact) = fs::read(&path) {
            // SAFETY: the file is an artifact this cache wrote with `precompile_component` of
            // this wasmtime version; the cache directory belongs to the operator running sma.
            // wasmtime still checks the header and engine compatibility and errors on mismatch.
            match unsafe { Component::deserialize(engine, &artifact) } {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cached component unusable; recompiling")
                }
            }
        }
        let artifact = engine.precompile_component(bytes)?;
        if let Err(e) = self.store(&path, &artifact) {
            tracing::warn!(path = %path.display(), error = %e, "could not write the component cache");
        }
        // SAFETY: `artifact` was produced just now by `precompile_component` on this engine.
        let component = unsafe { Component::deserialize(engine, &artifact)? };
        Ok((component, CacheOutcome::Compiled))
    }

    /// Writes atomically through a uniquely named temporary file: a reader sees the whole
    /// artifact or none, and concurrent writers of the same key never share a file.
    fn store(&self, path: &Path, artifact: &[u8]) -> std::io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let mut file = tempfile::NamedTempFile::new_in(&self.dir)?;
        file.write_all(artifact)?;
        file.as_file().sync_all()?;
        file.persist(path).map(|_| ()).map_err(|e| e.error)
    }
}
