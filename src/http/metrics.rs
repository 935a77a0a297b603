//! Counters served at `/metrics` (Prometheus text). Process-wide: a reload
//! does not reset them.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters served at `/metrics`.
#[derive(Default)]
pub struct Metrics {
    pub responses: [AtomicU64; 5],
    pub tokens_issued: AtomicU64,
}

impl Metrics {
    pub fn record(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP sesame_http_responses_total HTTP responses by status class.\n\
             # TYPE sesame_http_responses_total counter\n",
        );
        for (i, c) in self.responses.iter().enumerate() {
            out.push_str(&format!(
                "sesame_http_responses_total{{class=\"{}xx\"}} {}\n",
                i + 1,
                c.load(Ordering::Relaxed)
            ));
        }
        out.push_str(
            "# HELP sesame_tokens_issued_total Access tokens issued.\n\
             # TYPE sesame_tokens_issued_total counter\n",
        );
        out.push_str(&format!(
            "sesame_tokens_issued_total {}\n",
            self.tokens_issued.load(Ordering::Relaxed)
        ));
        out
    }
}
