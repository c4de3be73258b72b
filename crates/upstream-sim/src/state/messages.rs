//! The messaging commands (send, check, get-chats, seen, typing, get-media, events-get) and the events a test
//! makes arrive (incoming messages, any documented event).

use rand::Rng;
use serde::Serialize;

use super::{SessionError, SimState, to_json};
use crate::events::EventQuery;
use crate::messaging::{self, ChatId, MediaFile, MessageView, Outgoing};

/// A message a test makes arrive on a session (`POST /sim/sessions/<id>/incoming`).
#[derive(Debug)]
pub struct Incoming {
    pub from: ChatId,
    pub body: String,
    /// `(mimetype, filename, size)` of an attached file.
    pub media: Option<(String, String, u64)>,
}

/// What an incoming message became.
#[derive(Debug, Serialize)]
pub struct IncomingResult {
    pub result: &'static str,
    pub event_id: u64,
    /// Whether the session has a callback the event was sent to.
    pub sent: bool,
    pub message_id: String,
    pub media_key: Option<String>,
}

impl SimState {
    /// An incoming WhatsApp message, with or without a file: a `message` event.
    pub fn incoming(&self, unique_id: u64, message: Incoming) -> Result<IncomingResult, SessionError> {
        let timestamp = crate::clock::unix_seconds();
        let mut inner = self.lock();
        let random: u64 = inner.id_rng.random();
        let mut key_state: u64 = inner.id_rng.random();
        let session = inner.session_mut(unique_id)?;
        let media = message.media.map(|(mimetype, filename, size)| {
            let key = messaging::media_key(&mut key_state);
            let kind = messaging::type_of_mimetype(&mimetype);
            session.messaging_mut().add_media(MediaFile {
                key: key.clone(),
                mimetype,
                filename,
                size,
                seed: key_state,
            });
            (key, kind)
        });
        session.messaging_mut().touch(&message.from, true, timestamp);
        let view = MessageView {
            id: messaging::message_id(false, message.from.as_str(), random),
            ack: 1,
            has_media: media.is_some(),
            media_key: media.as_ref().map(|(key, _)| key.clone()),
            body: message.body,
            kind: media.as_ref().map_or("chat", |(_, kind)| *kind),
            timestamp,
            from: message.from.as_str().to_owned(),
            to: session.wid().unwrap_or_default().to_owned(),
            is_forwarded: false,
        };
        let callback = session.callback.clone();
        drop(inner);
        let sent = callback.is_some();
        let ids = self.emit(unique_id, callback, vec![("message", view.with_ack(1))]);
        Ok(IncomingResult {
            result: "OK",
            event_id: ids.first().copied().unwrap_or_default(),
            sent,
            message_id: view.id,
            media_key: view.media_key,
        })
    }

    /// Any documented event a test asks for, on a live session. Returns its id and whether it is delivered.
    pub fn inject(
        &self,
        unique_id: u64,
        action: &'static str,
        data: serde_json::Value,
    ) -> Result<(u64, bool), SessionError> {
        let callback = self.lock().session(unique_id)?.callback.clone();
        let sent = callback.is_some();
        let ids = self.emit(unique_id, callback, vec![(action, data.into())]);
        Ok((ids.first().copied().unwrap_or_default(), sent))
    }

    /// `send`: the message object (or the queued answer), then `sent` (asynchronous sends) and `ack` events.
    pub fn send(&self, unique_id: u64, message: Outgoing) -> Result<Vec<u8>, SessionError> {
        let timestamp = crate::clock::unix_seconds();
        let mut inner = self.lock();
        let (session, wid) = inner.ready_session(unique_id, self.timing)?;
        session.messaging_mut().touch(&message.chat, false, timestamp);
        let callback = session.callback.clone();
        let random: u64 = inner.id_rng.random();
        let mut key_state: u64 = inner.id_rng.random();
        inner.sends += 1;
        *inner.sends_by_session.entry(unique_id).or_default() += 1;
        drop(inner);
        let view = MessageView {
            id: messaging::message_id(true, message.chat.as_str(), random),
            ack: 1,
            has_media: message.media.is_some(),
            media_key: message.media.as_ref().map(|_| messaging::media_key(&mut key_state)),
            body: message.body,
            kind: message.media.as_ref().map_or("chat", |m| m.message_type),
            timestamp,
            from: wid,
            to: message.chat.as_str().to_owned(),
            is_forwarded: false,
        };
        let mut events = Vec::with_capacity(2);
        if message.asynchronous {
            events.push(("sent", view.with_ack(1)));
        }
        events.push(("ack", view.with_ack(2)));
        self.emit(unique_id, callback, events);
        if message.asynchronous {
            Ok(br#"{"result":{}}"#.to_vec())
        } else {
            Ok(to_json(&messaging::SendAnswer { result: &view }))
        }
    }

    /// `check`: whether the number is on WhatsApp.
    pub fn check(&self, unique_id: u64, number: &str) -> Result<bool, SessionError> {
        self.lock().ready_session(unique_id, self.timing)?;
        Ok(messaging::is_registered(number))
    }

    /// `get-chats`: `{"result":"OK","data":[chat...]}`.
    pub fn chats(&self, unique_id: u64) -> Result<Vec<u8>, SessionError> {
        let mut inner = self.lock();
        let (session, wid) = inner.ready_session(unique_id, self.timing)?;
        Ok(to_json(
            &serde_json::json!({ "result": "OK", "data": session.messaging.as_ref().map(|m| m.chats(&wid)).unwrap_or_default() }),
        ))
    }

    /// `seen` (the chat's messages are read) or `typing` (nothing to remember).
    pub fn chat_action(&self, unique_id: u64, chat: &ChatId, seen: bool) -> Result<(), SessionError> {
        let mut inner = self.lock();
        let (session, _) = inner.ready_session(unique_id, self.timing)?;
        if seen {
            session.messaging_mut().seen(chat);
        }
        Ok(())
    }

    /// `get-media`: the file with this key, if the session has it.
    pub fn media(&self, unique_id: u64, key: &str) -> Result<Option<MediaFile>, SessionError> {
        let mut inner = self.lock();
        let (session, _) = inner.ready_session(unique_id, self.timing)?;
        Ok(session.messaging.as_ref().and_then(|m| m.media(key)).cloned())
    }

    /// `events-get`: one page of stored events. A given session must exist or have left events behind.
    pub fn events(&self, query: &EventQuery) -> Result<Vec<u8>, SessionError> {
        if let Some(unique_id) = query.unique_id {
            let live = self.lock().session(unique_id).is_ok();
            if !live && !self.events.knows(unique_id) {
                return Err(SessionError::NotFound);
            }
        }
        Ok(self.events.query(query).to_json())
    }
}
