//! Handlers as WebAssembly components (`wit/handler.wit`), run with wasmtime.
//!
//! The expensive work happens once per component: compile (or load the cached artifact), link,
//! and pre-instantiate (`InstancePre`). Each invocation then costs one instantiation from the
//! pooling allocator, whose linear memories are copy-on-write images of the component's initial
//! memory, so a fresh instance per invocation is cheap and nothing leaks between invocations.
//! A ticker thread advances the engine's epoch; each store gets a deadline in ticks, so a
//! looping guest is interrupted without any per-invocation timer. A per-store limiter caps
//! memory growth and records that it refused, which tells an out-of-memory apart from other
//! traps.

use crate::cache::{CacheOutcome, ComponentCache};
use crate::error::InvokeError;
use serde_json::Value;
use sma_actions::{Limits, ParsedResponse};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    Trap,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "sip-media-application",
    });
}

use bindings::sma::handler::log::{self as wit_log, Level};
use bindings::{SipMediaApplication, SipMediaApplicationPre};

/// How instances relate to invocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InstanceMode {
    /// A fresh instance for every invocation: nothing survives between invocations. The default.
    #[default]
    FreshPerInvocation,
    /// One instance per call ([`WasmHandler::session`]), reused for all of that call's
    /// invocations. Much cheaper for JavaScript and Python components, whose runtimes cost
    /// hundreds of microseconds to start, at the price of isolation between one call's
    /// invocations: globals set in one invocation are visible in the next (never across calls).
    ReusePerCall,
}

/// Per-application limits of a component handler.
#[derive(Debug, Clone)]
pub struct WasmLimits {
    /// Wall-clock budget of one invocation, instantiation included.
    pub deadline: Duration,
    /// Largest linear memory the guest may grow to, in bytes.
    pub memory_bytes: usize,
    /// How instances are reused.
    pub instance_mode: InstanceMode,
    /// Response limits (body size).
    pub response: Limits,
}

impl Default for WasmLimits {
    fn default() -> Self {
        Self {
            deadline: crate::DEFAULT_DEADLINE,
            memory_bytes: 64 * 1024 * 1024,
            instance_mode: InstanceMode::default(),
            response: Limits::default(),
        }
    }
}

/// Engine-wide settings, shared by every application on the node.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Instances that may exist at once (each invocation in flight, each reused call session).
    pub max_instances: u32,
    /// Ceiling on any application's memory limit.
    pub max_memory_bytes: usize,
    /// Epoch tick: the granularity of deadlines.
    pub epoch_tick: Duration,
    /// Compiled-artifact cache.
    pub cache_dir: std::path::PathBuf,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            max_instances: 1000,
            max_memory_bytes: 512 * 1024 * 1024,
            epoch_tick: Duration::from_millis(5),
            cache_dir: ComponentCache::default_dir(),
        }
    }
}

/// The wasmtime engine, linker and artifact cache shared by all component handlers.
#[derive(Clone)]
pub struct WasmEngine {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    cache: ComponentCache,
    settings: EngineSettings,
}

impl WasmEngine {
    /// Builds the engine and starts its epoch ticker.
    pub fn new(settings: EngineSettings) -> Result<Self, InvokeError> {
        let load = |e: wasmtime::Error| InvokeError::Load(format!("{e:#}"));
        let n = settings.max_instances;
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(8))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(8))
            .max_core_instances_per_component(64)
            .max_memories_per_component(4)
            .max_tables_per_component(16)
            .max_component_instance_size(1 << 20)
            .max_core_instance_size(4 << 20)
            .table_elements(200_000)
            .max_memory_size(settings.max_memory_bytes)
            // Keep the first pages of a recycled memory resident instead of returning them
            // to the kernel: the next instantiation then skips the page faults.
            .linear_memory_keep_resident(256 * 1024)
            .table_keep_resident(64 * 1024)
            // Without userfaultfd write tracking, PAGEMAP_SCAN reports every page a guest
            // ever wrote, and its ioctls cost more than resetting a small memory outright:
            // measured 1.3-2 µs slower per fresh instance with it on.
            .pagemap_scan(wasmtime::Enabled::No);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(load)?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(load)?;
        wit_log::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
            &mut linker,
            |state| state,
        )
        .map_err(load)?;
        start_ticker(&engine, settings.epoch_tick);
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            cache: ComponentCache::new(settings.cache_dir.clone()),
            settings,
        })
    }

    /// Loads the component at `path`.
    pub fn load_file(&self, path: &Path, limits: WasmLimits) -> Result<WasmHandler, InvokeError> {
        let bytes = std::fs::read(path)
            .map_err(|e| InvokeError::Load(format!("cannot read {}: {e}", path.display())))?;
        self.load_bytes(&bytes, &path.display().to_string(), limits)
    }

    /// Loads a component from its bytes; `name` identifies it in logs.
    pub fn load_bytes(
        &self,
        bytes: &[u8],
        name: &str,
        limits: WasmLimits,
    ) -> Result<WasmHandler, InvokeError> {
        let load = |e: wasmtime::Error| InvokeError::Load(format!("{name}: {e:#}"));
        if limits.memory_bytes > self.settings.max_memory_bytes {
            return Err(InvokeError::Load(format!(
                "{name}: memory limit {} exceeds the engine ceiling {}",
                limits.memory_bytes, self.settings.max_memory_bytes
            )));
        }
        let (component, cache) = self.cache.load(&self.engine, bytes).map_err(load)?;
        let pre = self.linker.instantiate_pre(&component).map_err(load)?;
        let pre = SipMediaApplicationPre::new(pre).map_err(load)?;
        let tick = self.settings.epoch_tick.as_nanos().max(1);
        let deadline_ticks = (limits.deadline.as_nanos().div_ceil(tick) as u64).saturating_add(1);
        let handler = WasmHandler {
            inner: Arc::new(Inner {
                engine: self.engine.clone(),
                pre,
                limits,
                deadline_ticks,
                name: name.into(),
                cache,
            }),
        };
        handler.warm_up();
        Ok(handler)
    }
}

/// Advances the epoch every `tick` until the engine is dropped.
fn start_ticker(engine: &Engine, tick: Duration) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("sma-wasm-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(tick);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the epoch ticker; handler deadlines will not fire");
    }
}

struct Inner {
    engine: Engine,
    pre: SipMediaApplicationPre<HostState>,
    limits: WasmLimits,
    deadline_ticks: u64,
    name: Arc<str>,
    cache: CacheOutcome,
}

/// A loaded component handler. Cheap to clone.
#[derive(Clone)]
pub struct WasmHandler {
    inner: Arc<Inner>,
}

impl WasmHandler {
    /// Whether the component came from the artifact cache or was compiled now.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.inner.cache
    }

    /// The handler's limits.
    pub fn limits(&self) -> &WasmLimits {
        &self.inner.limits
    }

    /// The names of the interfaces the component imports (`wasi:cli/stderr@0.2.6`, ...).
    /// Every import is instantiated for every fresh instance, so this is what a handler
    /// costs beyond its own code.
    pub fn imports(&self) -> Vec<String> {
        let component = self.inner.pre.instance_pre().component();
        component
            .component_type()
            .imports(&self.inner.engine)
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    /// Instantiates the component once and drops the instance.
    ///
    /// Wasmtime builds a module's copy-on-write memory image (a memfd it then seals) at the
    /// module's first instantiation. Doing that here keeps its cost (tens of milliseconds for
    /// the multi-megabyte JavaScript and Python images) out of the first call's answer, and
    /// keeps a failure of it out of the call path: the kernel now and then refuses the seal
    /// while the freshly written pages are still busy (seen in the invoke benchmark, a
    /// Python fresh instance failing with "cannot add seals to the memfd"), and the same
    /// instantiation moments later succeeds. A component that cannot be instantiated at
    /// all still loads, with a warning; each invocation then reports why, as before.
    fn warm_up(&self) {
        const ATTEMPTS: u64 = 3;
        for attempt in 1..=ATTEMPTS {
            let mut store = self.new_store("warm-up");
            match self.inner.pre.instance_pre().instantiate(&mut store) {
                Ok(_) => return,
                Err(error) if attempt < ATTEMPTS => {
                    tracing::debug!(handler = %self.inner.name, attempt, error = %format!("{error:#}"),
                        "instantiating the component failed; trying again");
                    std::thread::sleep(Duration::from_millis(10 * attempt));
                }
                Err(error) => tracing::warn!(
                    handler = %self.inner.name,
                    error = %format!("{error:#}"),
                    "the component cannot be instantiated; its invocations will fail"
                ),
            }
        }
    }

    /// Invokes the handler in a fresh instance.
    ///
    /// Blocks for at most the deadline; call it from a blocking-capable thread.
    pub fn invoke(
        &self,
        event_json: &str,
        transaction_id: &str,
    ) -> Result<ParsedResponse, InvokeError> {
        let mut store = self.new_store(transaction_id);
        let result = self
            .inner
            .pre
            .instantiate(&mut store)
            .and_then(|app| app.call_handle_event(&mut store, event_json));
        self.finish(&mut store, result)
    }

    /// A session that keeps one instance for the life of a call (see
    /// [`InstanceMode::ReusePerCall`]). Drop it when the call ends.
    pub fn session(&self) -> WasmSession {
        WasmSession {
            handler: self.clone(),
            live: None,
        }
    }

    fn new_store(&self, transaction_id: &str) -> Store<HostState> {
        let state = HostState {
            wasi: None,
            table: ResourceTable::new(),
            memory: MemoryCap {
                limit: self.inner.limits.memory_bytes,
                refused: false,
            },
            log: LogContext {
                handler: self.inner.name.clone(),
                transaction_id: transaction_id.into(),
                lines: 0,
                last_error: None,
            },
        };
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|state| &mut state.memory);
        store.set_epoch_deadline(self.inner.deadline_ticks);
        store
    }

    fn finish(
        &self,
        store: &mut Store<HostState>,
        result: wasmtime::Result<Result<String, String>>,
    ) -> Result<ParsedResponse, InvokeError> {
        match result {
            Ok(Ok(body)) => {
                if body.trim().is_empty() {
                    // Blank is a response, just an invalid one: the call engine answers it
                    // with INVALID_LAMBDA_RESPONSE (EmptyResponse), not with failover.
                    return Ok(Value::Null.into());
                }
                ParsedResponse::read(&body, &self.inner.limits.response)
                    .map_err(InvokeError::InvalidResponse)
            }
            Ok(Err(message)) => Err(InvokeError::HandlerError(message)),
            Err(error) => Err(self.classify(store, error)),
        }
    }

    fn classify(&self, store: &mut Store<HostState>, error: wasmtime::Error) -> InvokeError {
        let state = store.data();
        if state.memory.refused {
            return InvokeError::OutOfMemory {
                limit_bytes: state.memory.limit,
            };
        }
        if error
            .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
            .is_some()
        {
            return InvokeError::Capacity(format!("{error:#}"));
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => InvokeError::DeadlineExceeded(self.inner.limits.deadline),
            Some(trap) => {
                let stderr = state.wasi_stderr();
                let mut message = trap.to_string();
                if !stderr.is_empty() {
                    message.push_str("; guest stderr: ");
                    message.push_str(stderr.trim());
                } else if let Some(line) = &state.log.last_error {
                    message.push_str("; last error the guest logged: ");
                    message.push_str(line);
                }
                InvokeError::Trap(message)
            }
            None => InvokeError::Trap(format!("{error:#}")),
        }
    }
}

/// One instance kept for the life of a call.
pub struct WasmSession {
    handler: WasmHandler,
    live: Option<(Store<HostState>, SipMediaApplication)>,
}

impl WasmSession {
    /// Invokes the call's instance, creating it on first use. After a failure the instance is
    /// discarded (its state may be inconsistent) and the next invocation starts a fresh one.
    pub fn invoke(
        &mut self,
        event_json: &str,
        transaction_id: &str,
    ) -> Result<ParsedResponse, InvokeError> {
        let (mut store, app) = match self.live.take() {
            Some(live) => live,
            None => {
                let mut store = self.handler.new_store(transaction_id);
                match self.handler.inner.pre.instantiate(&mut store) {
                    Ok(app) => (store, app),
                    Err(e) => return Err(self.handler.classify(&mut store, e)),
                }
            }
        };
        store.set_epoch_deadline(self.handler.inner.deadline_ticks);
        store.data_mut().log.lines = 0;
        store.data_mut().log.last_error = None;
        let result = app.call_handle_event(&mut store, event_json);
        let failed = !matches!(result, Ok(Ok(_)));
        let out = self.handler.finish(&mut store, result);
        if !failed {
            self.live = Some((store, app));
        }
        out
    }
}

/// Per-store state: WASI (empty: no env, args, preopens or sockets), the memory cap, and the
/// log context.
pub(crate) struct HostState {
    /// Built on the guest's first WASI call, with the stderr it writes to. Handlers rarely
    /// make one (the SDKs log through `sma:handler/log`), and building a context seeds random
    /// generators and allocates its streams: about 0.6 µs of every fresh instance otherwise.
    wasi: Option<(WasiCtx, CapturedOutput)>,
    table: ResourceTable,
    memory: MemoryCap,
    log: LogContext,
}

impl HostState {
    /// What the guest wrote to stderr; empty when it never touched WASI.
    fn wasi_stderr(&self) -> String {
        self.wasi
            .as_ref()
            .map(|(_, stderr)| stderr.text())
            .unwrap_or_default()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let (ctx, _) = self.wasi.get_or_insert_with(|| {
            let stderr = CapturedOutput::default();
            (WasiCtx::builder().stderr(stderr.clone()).build(), stderr)
        });
        WasiCtxView {
            ctx,
            table: &mut self.table,
        }
    }
}

struct MemoryCap {
    limit: usize,
    refused: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.limit;
        self.refused |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 200_000)
    }
}

/// Longest log line kept, and lines per invocation: a chatty guest cannot flood the log.
const MAX_LOG_LINE: usize = 4096;
const MAX_LOG_LINES: u32 = 256;

struct LogContext {
    handler: Arc<str>,
    transaction_id: Box<str>,
    lines: u32,
    /// The last line logged at error level: a `no_std` guest's panic message arrives this
    /// way (it has no stderr), and a trap report includes it.
    last_error: Option<String>,
}

impl wit_log::Host for HostState {
    fn log(&mut self, level: Level, mut message: String) {
        let ctx = &mut self.log;
        ctx.lines += 1;
        let is_error = matches!(level, Level::Error);
        let over_cap = ctx.lines > MAX_LOG_LINES;
        if over_cap && !is_error {
            return;
        }
        if message.len() > MAX_LOG_LINE {
            let mut end = MAX_LOG_LINE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        if !over_cap {
            emit(ctx, level, &message);
        }
        if is_error {
            // Kept past the line cap too: a panic report is usually the last thing logged.
            ctx.last_error = Some(message);
        }
    }
}

/// One guest log line into the runtime's log, tagged with the handler and TransactionId.
fn emit(ctx: &LogContext, level: Level, message: &str) {
    let (handler, tx) = (&*ctx.handler, &*ctx.transaction_id);
    match level {
        Level::Trace => {
            tracing::trace!(target: "sma::handler", handler, transaction_id = tx, "{message}")
        }
        Level::Debug => {
            tracing::debug!(target: "sma::handler", handler, transaction_id = tx, "{message}")
        }
        Level::Info => {
            tracing::info!(target: "sma::handler", handler, transaction_id = tx, "{message}")
        }
        Level::Warn => {
            tracing::warn!(target: "sma::handler", handler, transaction_id = tx, "{message}")
        }
        Level::Error => {
            tracing::error!(target: "sma::handler", handler, transaction_id = tx, "{message}")
        }
    }
}

/// The guest's stderr, kept (up to 4 KiB) so a panic message can be reported with the trap.
#[derive(Clone, Default)]
struct CapturedOutput {
    buffer: Arc<Mutex<Vec<u8>>>,
}

const MAX_CAPTURE: usize = 4096;

impl CapturedOutput {
    fn text(&self) -> String {
        let buffer = self.buffer.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&buffer).into_owned()
    }
}

impl wasmtime_wasi::cli::IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for CapturedOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if let Ok(mut buffer) = self.buffer.lock() {
            let room = MAX_CAPTURE.saturating_sub(buffer.len());
            buffer.extend_from_slice(&buf[..buf.len().min(room)]);
        }
        // Accept everything: output past the cap is dropped, never an error for the guest.
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
