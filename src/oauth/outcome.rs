//! The contract between the edge and the core, on the way out: what to
//! answer, said in protocol terms. The edge picks statuses, headers, cookie
//! names and words; the core picks none of them.

use serde_json::Value;

use super::{ErrorCode, OAuthError};

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
    /// or the request is gone), its words chosen by the error's code.
    pub fn error_page(e: OAuthError) -> Outcome {
        Outcome::problem(Problem::of(&e), e)
    }

    /// Our own error page, saying `problem` to the person.
    pub fn problem(problem: Problem, error: OAuthError) -> Outcome {
        Outcome::page(Page::Error(ErrorView { error, problem }))
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
    /// `prompt=select_account` with a session: continue as its user, or
    /// sign in with another account.
    AccountChooser(ChooserView),
    /// The consent form.
    Consent(ConsentView),
    /// "Sign out?": a logout request that can't prove it comes from an
    /// application the user signed in to.
    LogoutConfirm(LogoutView),
    /// The user is signed out.
    SignedOut(SignedOutView),
    /// An error for a person (the technical code underneath).
    Error(ErrorView),
    /// An authorization response to deliver by `response_mode=form_post`:
    /// post these fields to the client's redirect URI (OAuth 2.0 Form Post
    /// Response Mode).
    FormPost(FormPostView),
}

#[derive(Debug)]
pub struct LoginView {
    pub rid: String,
    pub csrf: String,
    pub client_id: String,
    pub client_name: String,
    pub username: String,
    pub notice: Option<Notice>,
    /// The request's `ui_locales`.
    pub ui_locales: Option<String>,
}

#[derive(Debug)]
pub struct ChooserView {
    pub rid: String,
    pub csrf: String,
    pub client_id: String,
    pub client_name: String,
    /// Who the session is for.
    pub username: String,
    pub ui_locales: Option<String>,
}

#[derive(Debug)]
pub struct ConsentView {
    pub rid: String,
    pub csrf: String,
    pub client_id: String,
    pub client_name: String,
    pub username: String,
    /// The scopes asked for, by name (the edge has their words).
    pub scopes: Vec<String>,
    pub ui_locales: Option<String>,
}

/// After logout: the application the user came from, when known.
#[derive(Debug, Default)]
pub struct SignedOutView {
    pub client_id: Option<String>,
    /// Front-channel logout: the URLs to load in iframes (the edge allows
    /// exactly their origins as frames of this page).
    pub frontchannel: Vec<String>,
    /// The client's post-logout URI (with `state`), to go on to once the
    /// frames have loaded.
    pub continue_to: Option<String>,
}

/// The fields of an authorization response (a code or an error, with
/// `state` and `iss`), for the browser to post to `action`, the client's
/// registered redirect URI (already checked).
#[derive(Debug)]
pub struct FormPostView {
    pub action: String,
    pub fields: Vec<(String, String)>,
    pub client_id: String,
    pub ui_locales: Option<String>,
}

/// An error page: the technical error, and what to tell the person.
#[derive(Debug)]
pub struct ErrorView {
    pub error: OAuthError,
    pub problem: Problem,
}

/// What went wrong, in a person's terms (a message key: the edge has the words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    UnknownClient,
    UnregisteredRedirectUri,
    /// The pending request is gone, expired, or from another browser.
    RequestExpired,
    /// A form's CSRF token did not check out.
    FormExpired,
    BadRequest,
    LogoutRejected,
    ServerError,
    Unavailable,
}

impl Problem {
    /// The default problem for an error, by its code.
    pub fn of(e: &OAuthError) -> Problem {
        use super::pending::{EXPIRED, FORM_EXPIRED};
        match e.code {
            ErrorCode::InvalidClient => Problem::UnknownClient,
            ErrorCode::ServerError => Problem::ServerError,
            ErrorCode::TemporarilyUnavailable => Problem::Unavailable,
            _ if e.description == EXPIRED => Problem::RequestExpired,
            _ if e.description == FORM_EXPIRED => Problem::FormExpired,
            _ => Problem::BadRequest,
        }
    }

    /// Its message key (`error.{key}.title`, `error.{key}.text`).
    pub fn key(self) -> &'static str {
        match self {
            Problem::UnknownClient => "unknown_client",
            Problem::UnregisteredRedirectUri => "unregistered_redirect_uri",
            Problem::RequestExpired => "request_expired",
            Problem::FormExpired => "form_expired",
            Problem::BadRequest => "bad_request",
            Problem::LogoutRejected => "logout_rejected",
            Problem::ServerError => "server_error",
            Problem::Unavailable => "unavailable",
        }
    }
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
