//! The bodies of the session commands (`sessions-get`, `session-delete`, `set-hook`, `set-name`): one constructor
//! each over the body's JSON object, every field at fault reported at once, through one per-field parser
//! ([`Fields`]) that any command reuses.

use serde_json::{Map, Value};

use crate::{
    error::FieldProblem,
    session::{CallbackUrl, SessionName, ValidationErrors},
};

/// `page_cnt` when none is given (as WhatsGate's default).
pub const DEFAULT_PAGE_CNT: u32 = 20;
/// Largest `page_cnt`.
pub const MAX_PAGE_CNT: u32 = 100;

/// A body's fields read one by one, collecting the problems of each.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    problems: Vec<FieldProblem>,
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Self { map, problems: Vec::new() }
    }

    pub(crate) fn problem(&mut self, field: &str, problem: impl Into<String>) {
        self.problems.push(FieldProblem::new(field, problem));
    }

    /// The raw value of a field (absent and `null` alike are `None`).
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// `WhatsappID`: a string or a number (WhatsGate's ids are 13 digits, sent either way), trimmed.
    pub fn whatsapp_id(&mut self, required: bool) -> Option<String> {
        const FIELD: &str = "WhatsappID";
        let text = match self.map.get(FIELD) {
            None | Some(Value::Null) => {
                if required {
                    self.problem(FIELD, "is required");
                }
                return None;
            }
            Some(Value::String(s)) => s.trim().to_owned(),
            Some(Value::Number(n)) if let Some(n) = whole_number(n) => n.to_string(),
            Some(_) => {
                self.problem(FIELD, "must be a string or a whole number");
                return None;
            }
        };
        if text.is_empty() {
            self.problem(FIELD, "must not be empty");
            return None;
        }
        Some(text)
    }

    /// An optional string, as sent.
    pub fn text(&mut self, key: &str) -> Option<String> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.problem(key, "must be a string");
                None
            }
        }
    }

    /// An optional filter: a string, trimmed; empty is no filter.
    pub fn filter_text(&mut self, key: &str) -> Option<String> {
        self.text(key).map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
    }

    /// A whole number in `1..=max` (a JSON number or a string of digits, as WhatsGate takes it), or `default`.
    pub fn positive(&mut self, key: &str, default: u32, max: u32) -> u32 {
        let parsed = match self.map.get(key) {
            None | Some(Value::Null) => return default,
            Some(Value::Number(n)) => whole_number(n),
            Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
            Some(_) => None,
        };
        match parsed.and_then(|n| u32::try_from(n).ok()) {
            Some(n) if (1..=max).contains(&n) => n,
            _ => {
                self.problem(key, format!("must be a whole number from 1 to {max}"));
                default
            }
        }
    }

    /// A required `name`, checked as in session-create.
    pub fn name(&mut self) -> Option<SessionName> {
        match self.map.get("name") {
            None | Some(Value::Null) => {
                self.problem("name", "is required");
                None
            }
            Some(Value::String(s)) => SessionName::parse(s).map_err(|p| self.problem("name", p)).ok(),
            Some(_) => {
                self.problem("name", "must be a string");
                None
            }
        }
    }

    /// A `callback` that must be present, where `null` or `""` removes it: `Some(None)` then.
    pub fn callback_or_removal(&mut self) -> Option<Option<CallbackUrl>> {
        match self.map.get("callback") {
            None => {
                self.problem("callback", "is required (null or \"\" removes it)");
                None
            }
            Some(Value::Null) => Some(None),
            Some(Value::String(s)) if s.is_empty() => Some(None),
            Some(Value::String(s)) => CallbackUrl::parse(s).map(Some).map_err(|p| self.problem("callback", p)).ok(),
            Some(_) => {
                self.problem("callback", "must be a string");
                None
            }
        }
    }

    /// `value` when no field is at fault, else every problem at once.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, ValidationErrors> {
        match value {
            Some(value) if self.problems.is_empty() => Ok(value),
            _ => Err(ValidationErrors(self.problems)),
        }
    }
}

/// A JSON number that is a whole number at or above 0: `7`, and also `7.0` (JSON does not tell them apart, and
/// JSON Schema's `integer` accepts both).
pub(crate) fn whole_number(n: &serde_json::Number) -> Option<u64> {
    n.as_u64().or_else(|| {
        n.as_f64().filter(|f| f.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(f)).map(|f| f as u64)
    })
}

/// A `sessions-get` body: optional filters, paging over the caller's own sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionsList {
    pub whatsapp_id: Option<String>,
    pub name: Option<String>,
    pub status: Option<String>,
    pub page_cnt: u32,
    pub page: u32,
}

impl SessionsList {
    pub fn parse(map: &Map<String, Value>) -> Result<Self, ValidationErrors> {
        let mut f = Fields::new(map);
        let whatsapp_id = f.whatsapp_id(false);
        let name = f.text("name");
        let status = f.text("status");
        let page_cnt = f.positive("page_cnt", DEFAULT_PAGE_CNT, MAX_PAGE_CNT);
        let page = f.positive("page", 1, u32::MAX);
        f.finish(Some(Self { whatsapp_id, name, status, page_cnt, page }))
    }

    /// Whether a filter could explain a session's absence from upstream's answer.
    pub fn filtered(&self) -> bool {
        self.name.is_some() || self.status.is_some()
    }
}

/// A `session-delete` body: the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDelete {
    pub whatsapp_id: String,
}

impl SessionDelete {
    pub fn parse(map: &Map<String, Value>) -> Result<Self, ValidationErrors> {
        let mut f = Fields::new(map);
        let whatsapp_id = f.whatsapp_id(true);
        f.finish(whatsapp_id.map(|whatsapp_id| Self { whatsapp_id }))
    }
}

/// A `set-hook` body: the session and its new callback (`None`: webhooks acknowledged and dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetHook {
    pub whatsapp_id: String,
    pub callback: Option<CallbackUrl>,
}

impl SetHook {
    pub fn parse(map: &Map<String, Value>) -> Result<Self, ValidationErrors> {
        let mut f = Fields::new(map);
        let whatsapp_id = f.whatsapp_id(true);
        let callback = f.callback_or_removal();
        f.finish(whatsapp_id.zip(callback).map(|(whatsapp_id, callback)| Self { whatsapp_id, callback }))
    }
}

/// A `set-name` body: the session and its new name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetName {
    pub whatsapp_id: String,
    pub name: SessionName,
}

impl SetName {
    pub fn parse(map: &Map<String, Value>) -> Result<Self, ValidationErrors> {
        let mut f = Fields::new(map);
        let whatsapp_id = f.whatsapp_id(true);
        let name = f.name();
        f.finish(whatsapp_id.zip(name).map(|(whatsapp_id, name)| Self { whatsapp_id, name }))
    }
}

/// Helpers of the body tests of this module and of `messaging`.
#[cfg(test)]
pub(crate) mod test_support {
    use serde_json::{Map, Value};

    use crate::session::ValidationErrors;

    /// A JSON object's fields (anything else: none).
    pub(crate) fn fields(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    /// The fields at fault, in order.
    pub(crate) fn problems_of(e: ValidationErrors) -> Vec<String> {
        e.0.into_iter().map(|p| p.field).collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{test_support::*, *};

    #[test]
    fn a_list_request_defaults_to_twenty_a_page_from_page_one() {
        let l = SessionsList::parse(&fields(json!({}))).unwrap();
        assert_eq!((l.page_cnt, l.page, l.whatsapp_id, l.name, l.status), (20, 1, None, None, None));
        let l = SessionsList::parse(&fields(json!({"WhatsappID": 6345454545454u64, "page_cnt": "100", "page": 3})))
            .unwrap();
        assert_eq!((l.whatsapp_id.as_deref(), l.page_cnt, l.page), (Some("6345454545454"), 100, 3));
    }

    #[test]
    fn paging_out_of_range_and_wrong_types_are_reported_per_field() {
        for (body, field) in [
            (json!({"page_cnt": 0}), "page_cnt"),
            (json!({"page_cnt": 101}), "page_cnt"),
            (json!({"page": 0}), "page"),
            (json!({"page": -1}), "page"),
            (json!({"page": 1.5}), "page"),
            (json!({"name": 5}), "name"),
            (json!({"status": []}), "status"),
            (json!({"WhatsappID": true}), "WhatsappID"),
            (json!({"WhatsappID": " "}), "WhatsappID"),
        ] {
            let e = SessionsList::parse(&fields(body.clone())).expect_err("invalid");
            assert_eq!(problems_of(e), vec![field.to_owned()], "{body}");
        }
    }

    #[test]
    fn a_command_needs_its_whatsapp_id() {
        assert_eq!(problems_of(SessionDelete::parse(&fields(json!({}))).unwrap_err()), vec!["WhatsappID"]);
        assert_eq!(SessionDelete::parse(&fields(json!({"WhatsappID": " 63 "}))).unwrap().whatsapp_id, "63");
    }

    #[test]
    fn set_hook_and_set_name_report_each_field_at_fault_at_once() {
        let e = SetHook::parse(&fields(json!({}))).unwrap_err();
        assert_eq!(problems_of(e), vec!["WhatsappID", "callback"]);
        let e = SetName::parse(&fields(json!({"name": 5}))).unwrap_err();
        assert_eq!(problems_of(e), vec!["WhatsappID", "name"]);
        for removal in [json!(null), json!("")] {
            let h = SetHook::parse(&fields(json!({"WhatsappID": 1, "callback": removal}))).unwrap();
            assert_eq!(h.callback, None);
        }
        let n = SetName::parse(&fields(json!({"WhatsappID": "1", "name": " My shop "}))).unwrap();
        assert_eq!(n.name.as_str(), SessionName::parse(" My shop ").unwrap().as_str());
    }
}
