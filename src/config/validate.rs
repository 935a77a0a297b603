//! CONTRACT STUB — validation.
