//! Settings come from a TOML file (`--config FILE` or `WGATE_CONFIG`) overlaid by `WGATE_*` environment variables.
//! A field `redis_url` is set by `WGATE_REDIS_URL` or by `redis_url = "..."` in the file.

use std::path::Path;

use figment::{
    Figment,
    providers::{Env, Format, Toml},
};
use serde::de::DeserializeOwned;

/// A setting is missing or malformed: one line that names the environment variable.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    /// An error about one setting, named by its field (`jwt_secret` -> `WGATE_JWT_SECRET`).
    pub fn setting(field: &str, problem: impl std::fmt::Display) -> Self {
        Self(format!("configuration error: {}: {problem}", env_name(field)))
    }
}

/// The environment variable that sets a field.
pub fn env_name(field: &str) -> String {
    format!("WGATE_{}", field.to_ascii_uppercase())
}

/// Loads settings of type `T` (whose `serde` defaults are the documented defaults).
pub fn load_config<T: DeserializeOwned>(file: Option<&Path>) -> Result<T, ConfigError> {
    let from_env = std::env::var_os("WGATE_CONFIG");
    let file = file.or(from_env.as_deref().map(Path::new));
    let mut figment = Figment::new();
    if let Some(file) = file {
        if !file.is_file() {
            return Err(ConfigError(format!(
                "configuration error: WGATE_CONFIG / --config: file {} does not exist",
                file.display()
            )));
        }
        figment = figment.merge(Toml::file_exact(file));
    }
    // WGATE_CONFIG names the file and is not itself a setting.
    figment = figment.merge(Env::prefixed("WGATE_").ignore(&["CONFIG"]).lowercase(true));
    figment.extract::<T>().map_err(|e| {
        let field = e.path.join(".");
        let what = e.kind.to_string();
        if field.is_empty() {
            ConfigError(format!("configuration error: {what}"))
        } else {
            ConfigError::setting(&field, what)
        }
    })
}

/// A process's settings made of its own part `T` and the parts every process shares (Redis, upstream, logs), each a
/// type of its own read from the same file and environment; `attach` puts the parts into the own part. Every
/// error names its variable, as [`load_config`]'s do.
pub fn load_with_parts<T, A, B, C>(file: Option<&Path>, attach: impl FnOnce(T, A, B, C) -> T) -> Result<T, ConfigError>
where
    T: DeserializeOwned,
    A: DeserializeOwned,
    B: DeserializeOwned,
    C: DeserializeOwned,
{
    Ok(attach(load_config(file)?, load_config(file)?, load_config(file)?, load_config(file)?))
}

/// [`setting_names`] of an own part and its three shared parts, together.
pub fn setting_names_with_parts<T, A, B, C>() -> Vec<&'static str>
where
    T: DeserializeOwned,
    A: DeserializeOwned,
    B: DeserializeOwned,
    C: DeserializeOwned,
{
    [setting_names::<T>(), setting_names::<A>(), setting_names::<B>(), setting_names::<C>()].concat()
}

/// The setting names (field names) of a settings type `T`, as its `Deserialize` implementation declares them: what a
/// configuration reference must list. Works for a struct deriving `Deserialize`; a type that flattens others
/// (`#[serde(flatten)]`) declares no names, so list those of each flattened part instead.
pub fn setting_names<T: DeserializeOwned>() -> Vec<&'static str> {
    let mut names = Vec::new();
    // The deserialiser stops at once with an error after recording the names; the error is expected.
    let _ = T::deserialize(names::FieldNames(&mut names));
    names
}

mod names {
    use serde::de::{self, Visitor};

    pub(super) struct FieldNames<'a>(pub(super) &'a mut Vec<&'static str>);

    #[derive(Debug)]
    pub(super) struct Stop;

    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("field names recorded")
        }
    }

    impl std::error::Error for Stop {}

    impl de::Error for Stop {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Self
        }
    }

    impl<'de> de::Deserializer<'de> for FieldNames<'_> {
        type Error = Stop;

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Stop> {
            self.0.extend_from_slice(fields);
            Err(Stop)
        }

        fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
}

/// Deserialisers for settings whose values may arrive as numbers: the environment is parsed as TOML values, so
/// `WGATE_NAMESPACE=123` or a numeric secret reaches serde as an integer. Use with `#[serde(deserialize_with)]`.
pub mod de {
    use secrecy::SecretString;
    use serde::{Deserialize, Deserializer};

    /// A scalar read as text.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        S(String),
        I(i64),
        U(u64),
        F(f64),
        B(bool),
    }

    impl Scalar {
        fn into_string(self) -> String {
            match self {
                Self::S(s) => s,
                Self::I(i) => i.to_string(),
                Self::U(u) => u.to_string(),
                Self::F(f) => f.to_string(),
                Self::B(b) => b.to_string(),
            }
        }
    }

    /// Any scalar, as a string.
    pub fn string_like<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Scalar::deserialize(d).map(Scalar::into_string)
    }

    /// Any scalar, as a string; absent or blank is `None`.
    pub fn opt_string_like<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<Scalar>::deserialize(d)?.map(Scalar::into_string).filter(|s| !s.trim().is_empty()))
    }

    /// Any scalar, as a secret; absent or blank is `None`.
    pub fn secret_like<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
        Ok(opt_string_like(d)?.map(SecretString::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct S {
        #[serde(default = "default_rate")]
        rate_per_second: u32,
        name: Option<String>,
    }

    fn default_rate() -> u32 {
        10
    }

    #[test]
    fn file_values_apply_and_a_bad_value_names_its_variable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "rate_per_second = 7\nname = \"x\"\n").unwrap();
        let s: S = load_config(Some(&path)).unwrap();
        assert_eq!((s.rate_per_second, s.name.as_deref()), (7, Some("x")));

        std::fs::write(&path, "rate_per_second = \"fast\"\n").unwrap();
        let err = load_config::<S>(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("WGATE_RATE_PER_SECOND"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn numeric_values_are_read_as_text_where_a_setting_is_text() {
        use secrecy::ExposeSecret;

        #[derive(Deserialize)]
        struct T {
            #[serde(deserialize_with = "de::string_like")]
            namespace: String,
            #[serde(default, deserialize_with = "de::secret_like")]
            key: Option<secrecy::SecretString>,
            #[serde(default, deserialize_with = "de::opt_string_like")]
            issuer: Option<String>,
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "namespace = 123\nkey = 4567\nissuer = \"  \"\n").unwrap();
        let t: T = load_config(Some(&path)).unwrap();
        assert_eq!(t.namespace, "123");
        assert_eq!(t.key.as_ref().map(|k| k.expose_secret().to_owned()), Some("4567".into()));
        assert_eq!(t.issuer, None, "a blank value is no value");
    }

    #[test]
    fn the_setting_names_of_a_type_are_its_field_names() {
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct T {
            redis_url: String,
            #[serde(default)]
            rate_burst: u32,
        }
        assert_eq!(setting_names::<T>(), ["redis_url", "rate_burst"]);
    }

    #[test]
    fn a_missing_file_is_an_error_naming_the_setting() {
        let err = load_config::<S>(Some(Path::new("/nonexistent/wgate.toml"))).unwrap_err().to_string();
        assert!(err.contains("WGATE_CONFIG"), "{err}");
    }
}
