//! CONTRACT STUB — `${NAME}` expansion.
