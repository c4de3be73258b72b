//! Domain types shared by every wgate crate: validated request values, the session-create bodies, the job record
//! and its lifecycle, the error body, and JWT claims.
//!
//! Invariant: this crate does no IO and knows nothing of actix, apalis, reqwest or Redis. Each value that comes from
//! a client is parsed once, through one constructor, into a type whose fields are private, so code holding a
//! `SessionName` never needs to check it again.
#![warn(unreachable_pub)]

pub mod capability;
pub mod claims;
pub mod error;
pub mod idempotency;
pub mod job;
pub mod messaging;
pub mod retry_after;
pub mod session;
pub mod session_commands;
pub mod session_view;
pub mod tenant;

pub use capability::{CAPABILITY_TOKEN_LEN, TOKEN_SECRET_LEN, is_capability_token, token_job};
pub use claims::{Audience, Claims, Scope, Scopes};
pub use error::{ErrorBody, FieldProblem};
pub use idempotency::IdempotencyKey;
pub use job::{ErrorClass, JobError, JobErrorView, JobId, JobKind, JobRecord, JobStatus, JobView, NewJob, relay_url};
pub use messaging::{
    ChatCommand, CheckNumber, EventsGet, GetMedia, Message, MessageKind, Recipient, SendMessage, SessionOnly,
};
pub use retry_after::retry_after;
pub use session::{
    AuthType, CallbackUrl, PhoneNumber, SessionCreate, SessionCreateBody, SessionName, ValidationErrors,
};
pub use session_commands::{SessionDelete, SessionsList, SetHook, SetName};
pub use session_view::{SessionView, unique_id_text};
pub use tenant::TenantId;
