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
    fn a_missing_file_is_an_error_naming_the_setting() {
        let err = load_config::<S>(Some(Path::new("/nonexistent/wgate.toml"))).unwrap_err().to_string();
        assert!(err.contains("WGATE_CONFIG"), "{err}");
    }
}
