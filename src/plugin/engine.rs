//! The sandboxed Rhai engine: one per configuration generation, shared by
//! every compiled script of that generation.
//!
//! Built from `Engine::new_raw()` plus the packages a claims or policy script
//! needs (no file, module, time or eval access), with every limit set so a
//! runaway script is stopped in milliseconds. `print` and `debug` go to the
//! log under the running script's name; `deny(reason)` raises a [`Denial`],
//! a Rust type a script cannot build itself.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use rhai::packages::{
    BasicArrayPackage, BasicMapPackage, BasicMathPackage, CorePackage, LogicPackage,
    MoreStringPackage, Package,
};
use rhai::{Dynamic, Engine, EvalAltResult, Position};

/// Operations one hook call may take (`loop {}` stops after this; a loop
/// over 1,000 groups with a few tests each takes about 20,000).
pub const MAX_OPERATIONS: u64 = 1_000_000;
/// Nested function calls (unbounded recursion stops here).
pub const MAX_CALL_LEVELS: usize = 32;
/// Expression nesting at global level and inside functions, in Rhai's own
/// units (each operator of a `||` chain counts one): twice its release
/// defaults, in every build, so a 25-term chain inside a loop and two `if`s
/// passes. The script stack below holds this with room to spare.
pub const MAX_EXPR_DEPTH: usize = 128;
pub const MAX_FUNCTION_EXPR_DEPTH: usize = 64;
/// Stack of every thread that compiles or runs scripts: the engine recurses
/// once per nesting level and per call, and a debug build's frames are large.
/// Reserved address space; only what a script touches becomes memory.
pub const STACK_SIZE: usize = 64 * 1024 * 1024;
/// Longest string a script may build, in bytes.
pub const MAX_STRING_SIZE: usize = 64 * 1024;
/// Most elements of an array, entries of a map.
pub const MAX_ARRAY_SIZE: usize = 4096;
pub const MAX_MAP_SIZE: usize = 1024;
/// Variables in scope, functions per script.
pub const MAX_VARIABLES: usize = 256;
pub const MAX_FUNCTIONS: usize = 256;

/// What `deny(reason)` raises: only the host can make one, so a script's own
/// `throw` is an error, never a denial.
#[derive(Debug, Clone)]
pub struct Denial(pub String);

/// What the engine raises when a call runs past its wall-clock limit.
#[derive(Debug, Clone)]
pub struct TimeLimit;

/// How many operations pass between two looks at the clock.
const CLOCK_EVERY_OPS: u64 = 64;

thread_local! {
    /// The script running on this thread, for `print`/`debug` lines.
    static RUNNING: RefCell<String> = const { RefCell::new(String::new()) };
    /// When the call running on this thread must stop.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The wall-clock limit of the call running on this thread, until dropped.
pub(crate) struct Deadline;

impl Deadline {
    pub(crate) fn start(limit: Duration) -> Deadline {
        DEADLINE.with(|d| d.set(Instant::now().checked_add(limit)));
        Deadline
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        DEADLINE.with(|d| d.set(None));
    }
}

fn past_deadline() -> bool {
    DEADLINE.with(|d| d.get().is_some_and(|at| Instant::now() >= at))
}

/// Marks `name` as the running script on this thread until dropped.
pub(crate) struct Running;

impl Running {
    pub(crate) fn enter(name: &str) -> Running {
        RUNNING.with(|r| {
            let mut r = r.borrow_mut();
            r.clear();
            r.push_str(name);
        });
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.with(|r| r.borrow_mut().clear());
    }
}

fn running() -> String {
    RUNNING.with(|r| r.borrow().clone())
}

/// Run `f` on a thread with [`STACK_SIZE`] of stack, and wait for it: what
/// compiles scripts or runs them outside the hook pool goes through here.
pub fn on_script_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    let slot = std::sync::Mutex::new(Some(f));
    let take = || slot.lock().ok().and_then(|mut f| f.take());
    let ran = std::thread::scope(|s| {
        let spawned = std::thread::Builder::new()
            .name("sesame-script".into())
            .stack_size(STACK_SIZE)
            .spawn_scoped(s, || take().map(|f| f()));
        match spawned {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a script thread; running on this one");
                None
            }
        }
    });
    match ran {
        Some(v) => v,
        // The thread never started, so `f` is still in its slot.
        None => match take() {
            Some(f) => f(),
            None => std::panic::resume_unwind(Box::new("a script thread lost its work")),
        },
    }
}

/// The packages every engine gets, built once for the process.
static PACKAGES: std::sync::LazyLock<Vec<rhai::Shared<rhai::Module>>> =
    std::sync::LazyLock::new(|| {
        vec![
            CorePackage::new().as_shared_module(),
            LogicPackage::new().as_shared_module(),
            BasicMathPackage::new().as_shared_module(),
            BasicArrayPackage::new().as_shared_module(),
            BasicMapPackage::new().as_shared_module(),
            MoreStringPackage::new().as_shared_module(),
        ]
    });

/// A new sandboxed engine (each script gets its own, for its `global::` settings).
pub fn sandboxed() -> Engine {
    let mut engine = Engine::new_raw();
    for package in PACKAGES.iter() {
        engine.register_global_module(package.clone());
    }

    // No modules from anywhere; `eval` would compile code at run time.
    engine.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    engine.set_max_modules(0);
    engine.disable_symbol("eval");

    engine.set_max_operations(MAX_OPERATIONS);
    engine.set_max_call_levels(MAX_CALL_LEVELS);
    engine.set_max_expr_depths(MAX_EXPR_DEPTH, MAX_FUNCTION_EXPR_DEPTH);
    engine.set_max_string_size(MAX_STRING_SIZE);
    engine.set_max_array_size(MAX_ARRAY_SIZE);
    engine.set_max_map_size(MAX_MAP_SIZE);
    engine.set_max_variables(MAX_VARIABLES);
    engine.set_max_functions(MAX_FUNCTIONS);

    // The operation limit bounds work; this bounds time (a script that stays
    // under the limit with slow operations still stops).
    engine.on_progress(|ops| {
        (ops % CLOCK_EVERY_OPS == 0 && past_deadline()).then(|| Dynamic::from(TimeLimit))
    });

    engine.on_print(|text| tracing::info!(script = %running(), "{text}"));
    engine.on_debug(|text, _source, pos| {
        tracing::debug!(script = %running(), line = pos.line().unwrap_or(0), "{text}")
    });

    engine.register_fn(
        "deny",
        |reason: &str| -> Result<Dynamic, Box<EvalAltResult>> {
            Err(Box::new(EvalAltResult::ErrorRuntime(
                Dynamic::from(Denial(reason.to_string())),
                Position::NONE,
            )))
        },
    );
    engine
}

/// What to tell the author of a script that hit one of the limits: the
/// limit, its value and how to restructure. `None` for any other error.
pub fn limit_hit(e: &EvalAltResult) -> Option<String> {
    let text = match e {
        EvalAltResult::ErrorTooManyOperations(_) => format!(
            "stopped at the operation limit ({MAX_OPERATIONS} operations per call): a loop that \
             never ends, or too much work per request? Build lookup tables once, as top-level \
             `const` settings read with `global::NAME`, and loop over less"
        ),
        EvalAltResult::ErrorStackOverflow(_) => format!(
            "function calls nested past the call-depth limit ({MAX_CALL_LEVELS} levels): \
             recursion that never stops? Write it as a loop"
        ),
        EvalAltResult::ErrorDataTooLarge(what, _) => {
            let (what, limit) = if what.contains("string") {
                ("a string", format!("{MAX_STRING_SIZE} bytes"))
            } else if what.contains("array") {
                ("an array", format!("{MAX_ARRAY_SIZE} elements"))
            } else {
                ("a map", format!("{MAX_MAP_SIZE} entries"))
            };
            format!(
                "{what} grew past its size limit ({limit}): keep only what the token needs, \
                 or build it in smaller parts"
            )
        }
        EvalAltResult::ErrorTooManyVariables(_) => format!(
            "more variables in scope than the limit ({MAX_VARIABLES}): reuse variables, or \
             keep values together in a map"
        ),
        _ => return None,
    };
    Some(text)
}

/// A compile error, with the limit explained when one was hit.
pub fn parse_error(e: &rhai::ParseError) -> String {
    let what = match e.err_type() {
        rhai::ParseErrorType::ExprTooDeep => format!(
            "expression nested past the depth limit ({MAX_EXPR_DEPTH} levels at top level, \
             {MAX_FUNCTION_EXPR_DEPTH} inside a function): name inner parts with `let`, move \
             them into a helper function, or test a list with `in` instead of a long `||` chain"
        ),
        rhai::ParseErrorType::TooManyFunctions => {
            format!("more functions than the limit ({MAX_FUNCTIONS}): split the script in two")
        }
        other => other.to_string(),
    };
    let pos = e.position();
    match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!("line {l}, column {c}: {what}"),
        (Some(l), None) => format!("line {l}: {what}"),
        _ => what,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str) -> Result<Dynamic, Box<EvalAltResult>> {
        sandboxed().eval::<Dynamic>(src)
    }

    #[test]
    fn endless_loops_hit_the_operation_limit() {
        let e = run("loop {}").unwrap_err();
        assert!(
            matches!(*e, EvalAltResult::ErrorTooManyOperations(_)),
            "{e}"
        );
    }

    #[test]
    fn a_call_past_its_deadline_is_terminated() {
        let _deadline = Deadline::start(Duration::from_millis(0));
        let e = sandboxed()
            .eval::<Dynamic>("let x = 0; while x < 1000 { x += 1; } x")
            .unwrap_err();
        assert!(matches!(*e, EvalAltResult::ErrorTerminated(..)), "{e}");
    }

    #[test]
    fn huge_strings_hit_the_size_limit() {
        let e = run(r#"let s = "x"; loop { s += s; }"#).unwrap_err();
        assert!(matches!(*e, EvalAltResult::ErrorDataTooLarge(..)), "{e}");
    }

    #[test]
    fn endless_recursion_hits_the_call_limit() {
        let e = run("fn f(x) { f(x + 1) } f(0)").unwrap_err();
        let mut inner = &*e;
        while let EvalAltResult::ErrorInFunctionCall(_, _, next, _) = inner {
            inner = next;
        }
        assert!(matches!(inner, EvalAltResult::ErrorStackOverflow(_)), "{e}");
    }

    #[test]
    fn no_import_no_eval() {
        assert!(run(r#"import "x" as y; 1"#).is_err());
        assert!(sandboxed().compile(r#"eval("1")"#).is_err());
    }

    #[test]
    fn deny_raises_a_denial_and_throw_does_not() {
        let e = run(r#"deny("no")"#).unwrap_err();
        let EvalAltResult::ErrorRuntime(v, _) = *e else {
            panic!("{e}")
        };
        assert_eq!(v.try_cast::<Denial>().unwrap().0, "no");
        let e = run(r#"throw "no""#).unwrap_err();
        let EvalAltResult::ErrorRuntime(v, _) = *e else {
            panic!("{e}")
        };
        assert!(v.try_cast::<Denial>().is_none());
    }
}
