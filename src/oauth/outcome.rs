//! The contract between the edge and the core, on the way out: what to
//! answer, said in protocol terms. The edge picks statuses, headers, cookie
//! names and words; the core picks none of them.

use serde_json::Value;

use super::OAuthError;

/// What one request is answered with, and the cookies to change on the way.
#[derive(Debug)]
pub struct Outcome {
    pub answer: Answer,
    pub cookies: Vec<Cookie>,
}

impl Outcome {
    pub fn new(answer: Answer) -> Outcome {
        Outcome {
            answer,
            cookies: Vec::new(),
        }
    }

    /// A page to render.
    pub fn page(page: Page) -> Outcome {
        Outcome::new(Answer::Page(page))
    }

    /// Our own error page (the client or its redirect URI can't be trusted,
    /// or the request is gone).
    pub fn error_page(e: OAuthError) -> Outcome {
        Outcome::page(Page::Error(e))
    }

    /// Send the browser on to `location`.
    pub fn redirect(location: String) -> Outcome {
        Outcome::new(Answer::Redirect(location))
    }

    /// This outcome, also changing `cookie`.
    pub fn with(mut self, cookie: Option<Cookie>) -> Outcome {
        self.cookies.extend(cookie);
        self
    }
}

impl From<Result<Value, OAuthError>> for Outcome {
    fn from(r: Result<Value, OAuthError>) -> Outcome {
        Outcome::new(match r {
            Ok(v) => Answer::Json(v),
            Err(e) => Answer::Error(e),
        })
    }
}

/// What to answer.
#[derive(Debug)]
pub enum Answer {
    /// A JSON document for an API client (token response, userinfo,
    /// introspection, revocation); never cached.
    Json(Value),
    /// An error for an API client (RFC 6749 §5.2 JSON).
    Error(OAuthError),
    /// Send the browser on: a client's redirect URI (with a code or an
    /// error) or one of our pages.
    Redirect(String),
    /// Render one of our pages.
    Page(Page),
}

/// A page, by name, with the data it shows. Words are the edge's: a page
/// carries message keys ([`Notice`]), never sentences.
#[derive(Debug)]
pub enum Page {
    /// The sign-in form.
    Login(LoginView),
    /// The consent form.
    Consent(ConsentView),
    /// "Sign out?": a logout request that can't prove it comes from an
    /// application the user signed in to.
    LogoutConfirm(LogoutView),
    /// The user is signed out.
    SignedOut,
    /// An error for a person (the technical code underneath).
    Error(OAuthError),
}

#[derive(Debug)]
pub struct LoginView {
    pub rid: String,
    pub csrf: String,
    pub client_name: String,
    pub username: String,
    pub notice: Option<Notice>,
}

#[derive(Debug)]
pub struct ConsentView {
    pub rid: String,
    pub csrf: String,
    pub client_name: String,
    pub username: String,
    /// (scope, description)
    pub scopes: Vec<(String, String)>,
}

/// The logout confirmation: the form posts its fields back to `/logout`.
#[derive(Debug)]
pub struct LogoutView {
    pub csrf: String,
    /// The application that asked, when known.
    pub client_name: Option<String>,
    pub client_id: Option<String>,
    /// Registered for that client (already checked).
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
}

/// Why a form came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The username or password was wrong (which one is not said).
    BadCredentials,
    /// Too many failures: refused for `retry_after` seconds without a check.
    Locked { retry_after: u64 },
}

/// A change to the browser's sesame cookies. Names, paths and flags are the
/// edge's (per tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cookie {
    /// Bind pending requests to this browser with this random value
    /// (lives as long as the browser session).
    SetBinding(String),
    /// The session cookie, valid for `max_age` seconds.
    SetSession { value: String, max_age: u64 },
    /// End the session cookie.
    ClearSession,
}
