//! CONTRACT STUB — the config helper implements these.
#![allow(unused_variables, clippy::unimplemented)]
use std::path::Path;

use super::{Config, ConfigErrors};

/// Read, parse, expand `${NAME}` from the process environment, read `users_file`s,
/// and validate. `base_dir` of the result is the file's directory.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    unimplemented!()
}

/// As [`load`], from text, with relative paths against `base_dir` and
/// variables from `env` (for tests).
pub fn load_str(text: &str, base_dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
    unimplemented!()
}
